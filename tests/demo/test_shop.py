"""The demo shop's pages and setup, on the first 300 rows of the Online Retail sample."""

from pathlib import Path

import pytest

from demo.shop import SITE_NAME, category_of, shop_prepare
from recommend import catalog, recommending, serving
from recommend.models import Experiment, Placement
from tracking.importers import events_import
from tracking.models import Item
from tracking.services import site_create

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parent.parent / "data" / "online_retail_300.csv.gz"


@pytest.fixture
def shop(settings, tmp_path):
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models"),
                        "TRAIN_WINDOW_DAYS": 10_000}
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()
    site = site_create(name=SITE_NAME, origins=["http://testserver"],
                       retention_days=10_000).site
    events_import(site=site, format="online-retail", path=DATA)
    shop_prepare(site=site)
    yield site
    serving.loaded_models_clear()


@pytest.mark.parametrize(("title", "category"), [
    ("WHITE HANGING HEART T-LIGHT HOLDER", "candles and lights"),
    ("JUMBO BAG RED RETROSPOT", "bags"),
    ("REGENCY CAKESTAND 3 TIER", "kitchen"),
    ("PAPER CHAIN KIT 50'S CHRISTMAS", "christmas"),
    ("SOMETHING ELSE ENTIRELY", "gifts"),
])
def test_categories_come_from_words_in_the_name(title, category):
    assert category_of(title) == category


def test_setup_gives_categories_urls_placements_and_an_experiment(shop):
    items = Item.objects.filter(site=shop)
    assert not items.filter(category="").exists() and not items.filter(url="").exists()
    assert items.exclude(attributes={}).exists()  # countries that bought the item
    assert set(Placement.objects.filter(site=shop).values_list("name", flat=True)) == {
        "home", "product", "similar", "cart"}
    experiment = Experiment.objects.get(site=shop)
    assert experiment.variants.count() == 2
    shop_prepare(site=shop)  # again: nothing new
    assert Experiment.objects.filter(site=shop).count() == 1


def test_pages_render_with_tracker_and_widgets(shop, client):
    home = client.get("/shop/").content.decode()
    assert "tracker.min.js" in home and 'data-recsite-placement="home"' in home
    item = Item.objects.filter(site=shop, available=True).exclude(price=None).first()
    product = client.get(f"/shop/p/{item.external_id}/").content.decode()
    assert 'id="view-item"' in product and 'data-recsite-placement="product"' in product
    assert 'data-recsite-placement="similar"' in product
    category = client.get(f"/shop/c/{item.category}/")
    assert category.status_code == 200 and item.title.lower().capitalize() in \
        category.content.decode()
    added = client.post("/shop/cart/add/", {"item_id": item.external_id},
                        HTTP_ACCEPT="application/json")
    assert added.json() == {"cart_count": 1}
    cart = client.get("/shop/cart/").content.decode()
    assert "Place order" in cart and '"transaction_id"' in cart
    assert client.post("/shop/cart/checkout/").status_code == 302
    assert "Your cart is empty" in client.get("/shop/cart/?ordered=1").content.decode()
    assert client.get("/shop/p/no-such-item/").status_code == 404
