"""What the demo shop needs beyond the imported data: categories derived from product
names, shop URLs on the items, placements, an experiment, and a trained model.

The Online Retail data has no categories; the demo derives one per product from words
in its name (``CATEGORY_WORDS``), so that category rules and "similar to <category>
items you like" have something to show. Derived, and labelled so in the demo's README.
"""

import re
from collections import Counter

from django.db import transaction
from django.db.models import Q

from recommend.models import ModelVersion, Placement
from recommend.services import site_train
from tracking.models import Event, Item, Site

SITE_NAME = "Demo gift shop"

# First match wins; names are upper case in the data.
CATEGORY_WORDS = [
    ("christmas", r"CHRISTMAS|XMAS|ADVENT|SANTA|REINDEER"),
    ("bags", r"\bBAGS?\b|SHOPPER|PURSE"),
    ("candles and lights", r"CANDLE|T-LIGHT|TEA LIGHT|LANTERN|\bLIGHTS?\b|LAMP|NIGHT LIGHT"),
    ("kitchen", r"MUG|\bCUPS?\b|TEACUP|PLATE|BOWL|\bJAR\b|BOTTLE|CAKE|BAKING|NAPKIN|LUNCH|"
                r"TEA TOWEL|APRON|SPOON|TRAY|TEAPOT|CAKESTAND|JUG"),
    ("stationery", r"\bCARDS?\b|WRAP|PAPER|NOTEBOOK|\bPENS?\b|PENCIL|STICKER|CHALK|ENVELOPE|"
                   r"\bTAGS?\b|RIBBON"),
    ("toys and games", r"\bTOYS?\b|GAME|DOLL|PUZZLE|JIGSAW|CHILDS|CHILDRENS|KIDS|SPACEBOY|"
                       r"DOLLY|PLAYHOUSE|SKITTLES|DOMINOES"),
    ("garden", r"GARDEN|PLANT|FLOWER|WATERING|BIRD|PEG"),
    ("jewellery", r"NECKLACE|BRACELET|EARRINGS|\bRING\b|HAIR|BROOCH|CHARM|DIAMANTE"),
    ("storage", r"\bBOX\b|\bBOXES\b|\bTINS?\b|STORAGE|BASKET|HOLDER|CASE"),
    ("home decor", r"SIGN|FRAME|CLOCK|MIRROR|ORNAMENT|DECORATION|HANGING|CUSHION|DOORSTOP|"
                   r"BUNTING|WREATH|HEART|VINTAGE|DOORMAT|COAT RACK|HOOK"),
]
_COMPILED = [(name, re.compile(pattern)) for name, pattern in CATEGORY_WORDS]

PLACEMENTS = [
    {"name": "home", "title": "Recommended for you", "limit": 6, "diversity": "category_cap",
     "category_cap": 2},
    {"name": "product", "title": "Because you viewed", "limit": 6, "strategy": "hybrid",
     "weights": {"knn": 0.5, "session": 2.0, "content": 0.1, "popularity": 0.02},
     "exclude_seen_days": 0},
    {"name": "similar", "title": "Similar items", "limit": 6},
    {"name": "cart", "title": "Complete your order", "limit": 4, "exclude_purchased": True},
]


def category_of(title: str) -> str:
    """The demo category of a product name ("gifts" when no word matches)."""
    upper = title.upper()
    return next((name for name, pattern in _COMPILED if pattern.search(upper)), "gifts")


@transaction.atomic
def catalog_prepare(*, site: Site) -> int:
    """Categories, shop URLs and the countries that bought each item; returns items changed."""
    countries: dict[str, Counter[str]] = {}
    for item_id, context in Event.objects.filter(site=site, name="purchase") \
            .exclude(item_id="").values_list("item_id", "context").iterator(chunk_size=5000):
        country = context.get("country") if isinstance(context, dict) else None
        if country:
            countries.setdefault(item_id, Counter())[country] += 1
    changed = []
    for item in Item.objects.filter(site=site).filter(Q(category="") | Q(url="")):
        item.category = item.category or category_of(item.title)
        item.url = item.url or f"/shop/p/{item.external_id}/"
        top = countries.get(item.external_id)
        if top:
            item.attributes = {**item.attributes,
                               "countries": ", ".join(c for c, _ in top.most_common(3))}
        changed.append(item)
    Item.objects.bulk_update(changed, ["category", "url", "attributes"], batch_size=1000)
    return len(changed)


def placements_ensure(*, site: Site) -> None:
    """The shop's placements, and an experiment on the product page (created once)."""
    for spec in PLACEMENTS:
        Placement.objects.get_or_create(site=site, name=spec["name"], defaults=spec)
    product = Placement.objects.get(site=site, name="product")
    if not product.experiments.exists():
        experiment = product.experiments.create(
            site=site, name="Product page: session-heavy blend vs item-kNN", slug="product-blend",
            min_impressions=200)
        experiment.variants.create(name="blend", weight=1, is_control=True)
        experiment.variants.create(name="knn", weight=1, overrides={
            "weights": {"knn": 1.0, "session": 0.5, "content": 0.05, "popularity": 0.02}})


def shop_prepare(*, site: Site, train: bool = True) -> ModelVersion | None:
    """Everything the shop needs; trains a model when the site has no active one."""
    catalog_prepare(site=site)
    placements_ensure(site=site)
    active = ModelVersion.objects.filter(site=site, is_active=True).first()
    if active is None and train:
        active = site_train(site=site)
    return active


def shop_site() -> Site | None:
    """The demo's site: "Demo gift shop", else the only active site."""
    site = Site.objects.filter(name=SITE_NAME, is_active=True).order_by("pk").first()
    if site is None:
        sites = list(Site.objects.filter(is_active=True)[:2])
        site = sites[0] if len(sites) == 1 else None
    return site
