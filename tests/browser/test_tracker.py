"""The tracker and the consent banner in headless Chromium, against the live server.

Each test asserts on what reached the server (Event and ConsentReceipt rows, the
requests the page completed) and on what the page stored.
"""

import json

import pytest

from tests.browser.conftest import shop_url, stored_events, tracker_storage
from tests.conftest import wait_for
from tracking.models import ConsentReceipt
from tracking.selectors import outcome_totals
from tracking.services import subject_hash

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.browser.urls")]

# Long enough for a batch timer of `flush=200` ms and its request to have happened.
QUIET_MS = 1200


def names(site) -> list[str]:
    return [event.name for event in stored_events(site)]


def queued(page) -> list[dict]:
    state = page.evaluate("localStorage.getItem('rs_q')")
    return json.loads(state)["q"] if state else []


def accept(page) -> None:
    page.get_by_role("button", name="Accept all").click()


def test_reject_stores_no_event_and_leaves_no_tracker_storage(page, live_server, shop_site,
                                                              network):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    page.get_by_role("button", name="Reject all").click()
    page.click("#add")
    page.wait_for_timeout(QUIET_MS)
    page.reload()  # the choice is remembered: no banner, still nothing collected
    assert page.get_by_role("dialog").is_hidden()
    page.click("#add")
    page.wait_for_timeout(QUIET_MS)

    assert stored_events(shop_site) == []
    assert network.events() == []
    assert tracker_storage(page) == {"cookies": ["rs_consent"], "storage": []}
    (receipt,) = ConsentReceipt.objects.filter(site=shop_site)
    assert (receipt.analytics, receipt.personalization, receipt.source) == (False, False, "banner")
    assert receipt.banner_version == "2026-11-24"


def test_accept_stores_page_view_view_item_and_add_to_cart(page, live_server, shop_site):
    page.goto(shop_url(live_server, shop_site))
    accept(page)
    page.click("#add")
    assert wait_for(lambda: names(shop_site) == ["page_view", "view_item", "add_to_cart"],
                    timeout=10), names(shop_site)

    anon_id = page.evaluate("JSON.parse(localStorage.getItem('rs_aid'))")
    assert anon_id.startswith("a_")
    assert {c["name"]: c["value"] for c in page.context.cookies()}["rs_aid"] == anon_id
    subject = subject_hash(site=shop_site, kind="a", raw_id=anon_id)
    page_view, view_item, add_to_cart = stored_events(shop_site)
    assert {page_view.subject, view_item.subject, add_to_cart.subject} == {subject}
    assert page_view.session == view_item.session == add_to_cart.session
    assert page_view.context["page"] == {"url": page.url, "referrer": "", "title": "Desk lamp"}
    assert page_view.context["viewport"] == "1280x800"
    assert page_view.context["locale"] == "en-GB"
    assert page_view.context["tz"] == "Europe/London"
    # Pushed to dataLayer before the tracker loaded, with the price as a string.
    assert (view_item.item_id, view_item.value, view_item.currency) == ("sku-1", 19.9, "EUR")
    assert view_item.context["item"] == {"item_name": "Desk lamp", "item_category": "lamps",
                                         "price": 19.9}
    assert (add_to_cart.item_id, add_to_cart.quantity, add_to_cart.value) == ("sku-1", 1, 19.9)
    (receipt,) = ConsentReceipt.objects.filter(site=shop_site)
    assert (receipt.subject, receipt.analytics, receipt.personalization, receipt.source) == (
        subject, True, True, "banner")
    # Google Consent Mode v2 heard the choice.
    updates = page.evaluate("dataLayer.filter(e => e[0] === 'consent').map(e => [e[1], e[2]])")
    assert updates == [["update", {"analytics_storage": "granted", "ad_storage": "granted",
                                   "ad_user_data": "granted", "ad_personalization": "granted"}]]


def test_offline_events_are_delivered_once_back_online(page, context, live_server, shop_site,
                                                       network):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    accept(page)
    assert wait_for(lambda: names(shop_site) == ["page_view", "view_item"], timeout=10)
    context.set_offline(True)
    for _ in range(3):
        page.click("#add")
    page.wait_for_timeout(QUIET_MS)
    assert [e["name"] for e in queued(page)] == ["add_to_cart"] * 3
    assert names(shop_site) == ["page_view", "view_item"]

    context.set_offline(False)
    assert wait_for(lambda: names(shop_site).count("add_to_cart") == 3, timeout=10)
    assert wait_for(lambda: queued(page) == [], timeout=5)
    # Playwright reports requests while the test calls into it: give it the time to.
    page.wait_for_timeout(300)
    sent_ids = [event["event_id"] for event, _ in network.events("add_to_cart")]
    assert len(sent_ids) == len(set(sent_ids)) == 3  # each reached the server once
    assert "duplicate" not in outcome_totals(site=shop_site)


def test_an_event_right_before_leaving_is_delivered_by_beacon(page, live_server, shop_site,
                                                              network):
    # Beacons sent while a page unloads are invisible to Playwright: count them in the tab.
    page.add_init_script("""{
      const send = navigator.sendBeacon.bind(navigator);
      navigator.sendBeacon = (url, body) => {
        const sent = JSON.parse(sessionStorage.getItem('beacons') || '[]');
        sent.push(new URL(url, location.href).pathname);
        sessionStorage.setItem('beacons', JSON.stringify(sent));
        return send(url, body);
      };
    }""")
    page.goto(shop_url(live_server, shop_site, flush="60000"))  # no timer flush in this test
    accept(page)
    assert wait_for(lambda: names(shop_site) == ["page_view", "view_item"], timeout=10)
    # A visitor's tab has focus; headless Chromium does not always say so to a page that
    # loaded in the background, and engaged time counts only while focused and visible.
    page.bring_to_front()
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    page.wait_for_timeout(300)
    page.click("#add")
    event_id = queued(page)[0]["event_id"]
    page.goto(f"{live_server.url}/test/plain/")  # a page without the tracker

    assert wait_for(lambda: "add_to_cart" in names(shop_site), timeout=10), names(shop_site)
    assert "user_engagement" in names(shop_site)  # the time spent, sent on leaving too
    # The page's own requests ended with view_item; the rest went by navigator.sendBeacon.
    assert event_id not in {event["event_id"] for event, _ in network.events()}
    assert page.evaluate("JSON.parse(sessionStorage.getItem('beacons'))") == ["/api/v1/collect"]


@pytest.mark.parametrize("signal", ["globalPrivacyControl", "doNotTrack"])
def test_a_privacy_signal_means_nothing_is_collected(page, live_server, shop_site, network,
                                                     signal):
    value = "true" if signal == "globalPrivacyControl" else "'1'"
    page.add_init_script(f"Object.defineProperty(Navigator.prototype, '{signal}', "
                         f"{{get: () => {value}}})")
    page.goto(shop_url(live_server, shop_site, flush="200"))
    assert page.get_by_role("dialog").is_hidden()  # GPC is the answer: no banner
    page.click("#add")
    page.wait_for_timeout(QUIET_MS)
    assert stored_events(shop_site) == []
    assert network.events() == []
    assert tracker_storage(page) == {"cookies": ["rs_consent"], "storage": []}
    assert wait_for(lambda: ConsentReceipt.objects.filter(site=shop_site).exists())
    (receipt,) = ConsentReceipt.objects.filter(site=shop_site)
    assert (receipt.analytics, receipt.personalization, receipt.source) == (False, False, "gpc")

    # Without the signal (a page of the same site without the init script) the banner asks.
    unsignalled = page.context.new_page()
    unsignalled.goto(shop_url(live_server, shop_site))
    assert unsignalled.get_by_role("dialog").is_visible()
    unsignalled.close()

    # An explicit opt-in in the banner overrides the signal.
    page.click("#settings")
    accept(page)
    page.click("#add")
    assert wait_for(lambda: "add_to_cart" in names(shop_site), timeout=10)


def test_widget_impression_and_click_carry_the_rec_token(page, live_server, shop_site):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    accept(page)
    page.wait_for_timeout(1300)  # the widget is below the fold: no impression yet
    assert "view_item_list" not in names(shop_site)
    page.locator("#recs").scroll_into_view_if_needed()
    assert wait_for(lambda: "view_item_list" in names(shop_site), timeout=10), names(shop_site)
    page.get_by_role("link", name="Lamp shade").click()  # leaves for another page
    page.wait_for_url("**/test/plain/**")
    assert wait_for(lambda: "select_item" in names(shop_site), timeout=10), names(shop_site)

    impression = next(e for e in stored_events(shop_site) if e.name == "view_item_list")
    assert impression.rec_token == "tok-abc"
    assert impression.context["params"]["item_list_id"] == "product"
    rows = impression.__class__.objects.filter(site=shop_site, event_id=impression.event_id)
    assert sorted(rows.values_list("item_id", flat=True)) == ["sku-7", "sku-8"]
    click = next(e for e in stored_events(shop_site) if e.name == "select_item")
    assert (click.item_id, click.rec_token) == ("sku-7", "tok-abc")

    # Back on the shop, adding the clicked item to the cart carries the token.
    page.goto(shop_url(live_server, shop_site, flush="200"))
    page.evaluate("recsite('event', 'add_to_cart', {items: [{item_id: 'sku-7', price: 4.5}]})")
    page.evaluate("recsite('event', 'add_to_cart', {items: [{item_id: 'sku-9', price: 2}]})")
    assert wait_for(lambda: names(shop_site).count("add_to_cart") == 2, timeout=10)
    carts = {e.item_id: e.rec_token for e in stored_events(shop_site) if e.name == "add_to_cart"}
    assert carts == {"sku-7": "tok-abc", "sku-9": ""}


def test_the_queue_survives_a_reload(page, live_server, shop_site):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    accept(page)
    assert wait_for(lambda: names(shop_site) == ["page_view", "view_item"], timeout=10)
    page.route("**/api/v1/collect", lambda route: route.abort())  # the server unreachable
    page.click("#add")
    page.wait_for_timeout(QUIET_MS)
    assert [e["name"] for e in queued(page)] == ["add_to_cart"]
    page.unroute("**/api/v1/collect")
    # The browser refuses the beacon on unload too: the event can only come from storage.
    page.evaluate("navigator.sendBeacon = () => false")
    page.reload()
    assert wait_for(lambda: "add_to_cart" in names(shop_site), timeout=10), names(shop_site)
    assert names(shop_site).count("add_to_cart") == 1


def test_withdrawing_consent_clears_the_tracker_storage(page, live_server, shop_site, network):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    accept(page)
    assert wait_for(lambda: len(stored_events(shop_site)) == 2, timeout=10)
    anon_id = page.evaluate("JSON.parse(localStorage.getItem('rs_aid'))")
    page.click("#settings")
    page.get_by_role("button", name="Reject all").click()
    assert tracker_storage(page) == {"cookies": ["rs_consent"], "storage": []}
    page.click("#add")
    page.wait_for_timeout(QUIET_MS)
    assert len(stored_events(shop_site)) == 2
    assert wait_for(lambda: ConsentReceipt.objects.filter(site=shop_site).count() == 2)
    latest = ConsentReceipt.objects.filter(site=shop_site).order_by("-recorded_at").first()
    # The withdrawal names the same visitor, so the server refuses its events from now on.
    assert latest.subject == subject_hash(site=shop_site, kind="a", raw_id=anon_id)
    assert (latest.analytics, latest.personalization) == (False, False)


def test_single_page_navigation_engagement_and_scroll(page, live_server, shop_site):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    accept(page)
    first_url = page.url
    page.mouse.wheel(0, 5000)
    assert wait_for(lambda: "scroll" in names(shop_site), timeout=10)
    page.evaluate("history.pushState({}, '', '/test/shop/next')")
    assert wait_for(lambda: names(shop_site).count("page_view") == 2, timeout=10)

    events = stored_events(shop_site)
    scroll = next(e for e in events if e.name == "scroll")
    assert scroll.scroll_pct == 100
    second_view = [e for e in events if e.name == "page_view"][1]
    assert second_view.context["page"]["url"] == f"{live_server.url}/test/shop/next"
    assert second_view.context["page"]["referrer"] == first_url
    engagement = next(e for e in events if e.name == "user_engagement")
    assert engagement.engaged_ms > 0
    assert engagement.context["page"]["url"] == first_url
