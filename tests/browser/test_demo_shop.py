"""The demo shop in headless Chromium: banner, browsing, recommendations that change, a
recommendation clicked and added to the cart, and the attribution report counting it."""

from pathlib import Path

import pytest

from demo.shop import SITE_NAME, shop_prepare
from recommend import catalog, recommending, serving
from recommend.attribution import attribution_report
from recommend.models import Dismissal
from recommend.tokens import token_read
from tests.conftest import wait_for
from tracking.importers import events_import
from tracking.models import Event, Site
from tracking.selectors import outcome_totals
from tracking.services import site_create, subject_hash

pytestmark = pytest.mark.django_db(transaction=True)
# All rows of 80 customers of the shipped Online Retail sample (see tests/data/README.md).
DATA = Path(__file__).resolve().parent.parent / "data" / "online_retail_80_customers.csv.gz"
WIDGET = "section[data-recsite-placement='{}']"


@pytest.fixture
def demo_site(live_server, settings, tmp_path) -> Site:
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models"),
                        "TRAIN_WINDOW_DAYS": 10_000}  # the purchases are from 2010-2011
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()
    site = site_create(name=SITE_NAME, origins=[live_server.url], retention_days=10_000).site
    events_import(site=site, format="online-retail", path=DATA)
    version = shop_prepare(site=site)
    assert version is not None and version.is_active
    yield site
    serving.loaded_models_clear()
    catalog.catalogs_clear()


def reasons(page, placement: str) -> list[str]:
    return page.locator(f"{WIDGET.format(placement)} .recsite-widget__reason").all_inner_texts()


def test_browse_watch_recommendations_change_click_one_and_add_it_to_the_cart(
        page, live_server, demo_site):
    page.goto(f"{live_server.url}/shop/")
    assert page.get_by_role("dialog").is_visible()  # the consent banner
    before = reasons(page, "home")
    assert before and not any(text.startswith("Because you viewed") for text in before)
    page.get_by_role("button", name="Accept all").click()
    anon_id = page.evaluate("JSON.parse(localStorage.getItem('rs_aid'))")
    subject = subject_hash(site=demo_site, kind="a", raw_id=anon_id)

    products = [page.locator(".grid .card a").nth(i).get_attribute("href") for i in range(3)]
    for n, href in enumerate(products, 1):
        page.goto(live_server.url + href)
        assert wait_for(lambda n=n: Event.objects.filter(site=demo_site, subject=subject,
                                                         name="view_item").count() == n,
                        timeout=15), f"view {n} not stored"
        # A person's pace: more than 10 events within a second mark a bot, whose events
        # are dropped (page views, impressions, scrolls and dwell add up quickly).
        page.wait_for_timeout(1000)
    viewed = {href.rstrip("/").rsplit("/", 1)[1] for href in products}

    page.goto(f"{live_server.url}/shop/")
    after = reasons(page, "home")
    assert after != before
    assert any(text.startswith("Because you viewed") for text in after), after

    page.goto(live_server.url + products[-1])
    widget = page.locator(WIDGET.format("product"))
    widget.scroll_into_view_if_needed()
    variant = widget.get_attribute("data-recsite-variant")
    token = token_read(widget.get_attribute("data-rec-token"))
    assert variant and token.variant == variant and token.subject == subject[:16]
    assert any(text.startswith("Because you viewed") for text in reasons(page, "product"))
    page.wait_for_timeout(1500)  # an impression needs a second at least half visible
    first = widget.locator("[data-recsite-item]").first
    clicked = first.get_attribute("data-recsite-item")
    assert clicked not in viewed
    first.click()
    page.wait_for_url(f"**/shop/p/{clicked}/")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_selector("#added:has-text('Added')")

    def counted() -> tuple[int, int, int]:
        rows = [row for row in attribution_report(site_id=demo_site.pk)
                if row.key[:2] == ("product", variant)]
        return (sum(r.impressions for r in rows), sum(r.clicks for r in rows),
                sum(r.add_to_cart for r in rows))

    assert wait_for(lambda: counted()[1:] == (1, 1) and counted()[0] >= 1, timeout=20), \
        (counted(), outcome_totals(site=demo_site))
    clicks = Event.objects.filter(site=demo_site, subject=subject, name="select_item")
    assert [e.item_id for e in clicks] == [clicked]
    cart = Event.objects.get(site=demo_site, subject=subject, name="add_to_cart")
    assert cart.item_id == clicked and token_read(cart.rec_token).items == token.items

    # The cart's list is drawn by widget.js from the public API, for this visitor.
    page.goto(f"{live_server.url}/shop/cart/")
    js_widget = page.locator(WIDGET.format("cart"))
    js_widget.wait_for()
    shown = js_widget.locator("[data-recsite-item]").evaluate_all(
        "links => links.map(a => a.dataset.recsiteItem)")
    assert shown and clicked not in shown
    # widget.js brought its stylesheet: the list is the responsive grid.
    assert js_widget.locator("ul").evaluate("el => getComputedStyle(el).display") == "grid"
    assert token_read(js_widget.get_attribute("data-rec-token")).subject == subject[:16]
    # Not interested: the item goes from the page, and from every later list.
    page.locator(f"[data-recsite-dismiss='{shown[0]}']").click()
    assert js_widget.locator(f"[data-recsite-item='{shown[0]}']").count() == 0
    assert wait_for(lambda: Dismissal.objects.filter(site=demo_site, subject=subject,
                                                     item_id=shown[0]).exists(), timeout=15)
    page.goto(f"{live_server.url}/shop/cart/")
    page.locator(WIDGET.format("cart")).wait_for()
    assert page.locator(f"{WIDGET.format('cart')} [data-recsite-item='{shown[0]}']").count() == 0
