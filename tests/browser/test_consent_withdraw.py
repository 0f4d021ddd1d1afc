"""Withdrawing consent takes no more clicks than giving it: one, on the banner or the page."""

import pytest

from tests.browser.conftest import shop_url
from tests.conftest import wait_for
from tracking.models import ConsentReceipt, ConsentRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.browser.urls")]

WITHDRAW_LINK = """() => {
  const link = document.createElement('button');
  link.textContent = 'Withdraw consent';
  link.setAttribute('data-recsite-consent-withdraw', '');
  document.body.prepend(link);
}"""


def test_one_click_gives_consent_and_one_click_withdraws_it(page, live_server, shop_site):
    page.goto(shop_url(live_server, shop_site, flush="200"))
    page.get_by_role("button", name="Accept all").click()  # giving: one click
    assert wait_for(lambda: ConsentRecord.objects.filter(site=shop_site, analytics=True)
                    .exists())
    page.evaluate(WITHDRAW_LINK)  # the site's footer link
    page.get_by_role("button", name="Withdraw consent").click()  # withdrawing: one click

    def withdrawn() -> bool:
        return ConsentRecord.objects.filter(site=shop_site, analytics=False).exists()

    assert wait_for(withdrawn)
    choices = list(ConsentReceipt.objects.filter(site=shop_site).order_by("recorded_at")
                   .values_list("analytics", "personalization"))
    assert choices == [(True, True), (False, False)]
    assert page.get_by_role("dialog").is_hidden()
    assert "rs_aid" not in {cookie["name"] for cookie in page.context.cookies()}
