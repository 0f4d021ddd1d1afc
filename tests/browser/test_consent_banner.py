"""The consent banner in headless Chromium: accessible, keyboard operable, no layout shift."""

import pytest

from tests.browser.conftest import shop_url, stored_events
from tests.conftest import wait_for
from tracking.models import ConsentReceipt

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.browser.urls")]

LAYOUT_SHIFT = """new Promise(resolve => {
  let total = 0;
  new PerformanceObserver(list => list.getEntries().forEach(e => total += e.value))
    .observe({type: 'layout-shift', buffered: true});
  setTimeout(() => resolve(total), 300);
})"""


def focused(page) -> str:
    """The focused element, as role or tag plus its accessible text."""
    return page.evaluate("""(() => {
      const el = document.activeElement;
      return (el.getAttribute('role') || el.tagName.toLowerCase()) + ':' +
        (el.getAttribute('aria-labelledby') ? document.getElementById(
          el.getAttribute('aria-labelledby')).textContent : el.textContent || el.name);
    })()""")


def test_a_labelled_dialog_that_takes_focus_without_shifting_the_layout(page, live_server,
                                                                       shop_site):
    page.goto(shop_url(live_server, shop_site))
    dialog = page.get_by_role("dialog", name="Your privacy choices")
    assert dialog.is_visible()
    described_by = page.locator("#" + dialog.get_attribute("aria-describedby"))
    assert "analytics" in described_by.text_content()
    assert focused(page) == "dialog:Your privacy choices"
    assert page.evaluate(LAYOUT_SHIFT) == 0
    assert page.evaluate("getComputedStyle(document.querySelector('.rs-consent')).position") \
        == "fixed"
    # Accept and Reject side by side, looking the same.
    style = ("b => ['fontSize', 'fontWeight', 'color', 'backgroundColor', 'borderTopWidth', "
             "'borderTopColor', 'paddingTop', 'paddingLeft'].map(p => getComputedStyle(b)[p])")
    accept = page.get_by_role("button", name="Accept all")
    reject = page.get_by_role("button", name="Reject all")
    assert accept.evaluate(style) == reject.evaluate(style)
    accept_box, reject_box = accept.bounding_box(), reject.bounding_box()
    assert abs(accept_box["width"] - reject_box["width"]) < 1
    assert accept_box["height"] == reject_box["height"]


def test_customize_with_the_keyboard_alone(page, live_server, shop_site):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    page.keyboard.press("Tab")
    assert focused(page) == "button:Reject all"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert focused(page) == "button:Customize"
    page.keyboard.press("Enter")
    assert page.get_by_role("button", name="Customize").get_attribute("aria-expanded") == "true"
    assert page.get_by_role("group", name="What you allow").is_visible()
    assert page.get_by_role("checkbox", name="Necessary").is_disabled()
    assert focused(page) == "input:analytics"
    page.keyboard.press("Space")  # analytics on, personalization left off
    page.keyboard.press("Tab")
    assert focused(page) == "input:personalization"
    page.keyboard.press("Tab")
    assert focused(page) == "button:Save choices"
    page.keyboard.press("Enter")
    assert page.get_by_role("dialog").is_hidden()

    assert wait_for(lambda: ConsentReceipt.objects.filter(site=shop_site).exists())
    (receipt,) = ConsentReceipt.objects.filter(site=shop_site)
    assert (receipt.analytics, receipt.personalization) == (True, False)
    assert wait_for(lambda: len(stored_events(shop_site)) == 2, timeout=10)
    updates = page.evaluate("dataLayer.filter(e => e[0] === 'consent').map(e => e[2])")
    assert updates == [{"analytics_storage": "granted", "ad_storage": "denied",
                        "ad_user_data": "denied", "ad_personalization": "denied"}]


def test_reopened_from_the_page_shows_the_choice_and_escape_returns_focus(page, live_server,
                                                                          shop_site):
    page.goto(shop_url(live_server, shop_site))
    page.get_by_role("button", name="Reject all").click()
    page.focus("#settings")
    page.keyboard.press("Enter")  # the page's own "Privacy settings" button
    assert page.get_by_role("dialog").is_visible()
    assert focused(page) == "dialog:Your privacy choices"
    assert not page.locator("input[name=analytics]").is_checked()
    page.keyboard.press("Escape")
    assert page.get_by_role("dialog").is_hidden()
    assert focused(page) == "button:Privacy settings"
    page.wait_for_timeout(300)
    # One receipt, the refusal's: closing the reopened dialog chose nothing.
    assert wait_for(lambda: ConsentReceipt.objects.filter(site=shop_site).count() == 1)
    assert not ConsentReceipt.objects.get(site=shop_site).analytics


def test_the_texts_come_from_the_site(page, live_server, shop_site, settings):
    settings.RECSITE = {"CONSENT_TEXTS": {"title": "Ihre Datenschutz-Einstellungen",
                                          "accept": "Alle akzeptieren",
                                          "reject": "Alle ablehnen"}}
    page.goto(shop_url(live_server, shop_site))
    assert page.get_by_role("dialog", name="Ihre Datenschutz-Einstellungen").is_visible()
    page.get_by_role("button", name="Alle ablehnen").click()
    assert page.get_by_role("dialog").is_hidden()
