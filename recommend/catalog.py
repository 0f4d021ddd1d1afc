"""The catalog as serving sees it: an in-process snapshot per site, and the upsert and
takedown of items from the site's backend (``PUT /api/v1/items``).

Serving never reads the Item table per request: each process holds the site's items and
reloads what changed when the site's cache generation moves (any upsert or takedown
bumps it) or every CATALOG_CHECK_SECONDS.
"""

import math
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from recommend.caching import answer_cache
from recommend.conf import recommend_settings
from tracking.models import Item, Site

# --- the snapshot --------------------------------------------------------------------


@dataclass(slots=True)
class CatalogItem:
    """What serving needs of an item: rules, filters, rendering."""

    item_id: str
    title: str
    category: str
    price: float | None
    currency: str
    url: str
    image_url: str
    available: bool
    tags: tuple[str, ...]
    created: float
    attributes: dict[str, Any]


_FIELDS = ("external_id", "title", "category", "price", "currency", "url", "image_url",
           "available", "tags", "created_at", "attributes")


@dataclass
class Catalog:
    site_id: int
    generation: int = -1
    items: dict[str, CatalogItem] = field(default_factory=dict)
    loaded_until: datetime | None = None  # rows changed after this are not loaded yet
    checked: float = 0.0

    def get(self, item_id: str) -> CatalogItem | None:
        return self.items.get(item_id)


_catalogs: dict[int, Catalog] = {}
_lock = threading.Lock()
# Rows saved in a transaction that committed late carry an earlier updated_at: reread
# a margin before the last load.
_MARGIN = timedelta(seconds=5)


def catalog_get(*, site_id: int, generation: int) -> Catalog:
    """The site's catalog, reloaded where it changed (a new generation, or time passed)."""
    held = _catalogs.get(site_id)
    stale = held is None or held.generation != generation or \
        time.monotonic() - held.checked >= recommend_settings.CATALOG_CHECK_SECONDS
    if not stale:
        return held  # type: ignore[return-value]
    with _lock:
        held = _catalogs.setdefault(site_id, Catalog(site_id=site_id))
        _catalog_refresh(held)
        held.generation = generation
    return held


def _catalog_refresh(catalog: Catalog) -> None:
    started = timezone.now()
    rows = Item.objects.filter(site_id=catalog.site_id)
    if catalog.loaded_until is not None:
        rows = rows.filter(updated_at__gte=catalog.loaded_until - _MARGIN)
    for row in rows.values_list(*_FIELDS).iterator(chunk_size=5000):
        item = _catalog_item(row)
        catalog.items[item.item_id] = item
    catalog.loaded_until = started
    catalog.checked = time.monotonic()


def _catalog_item(row: tuple) -> CatalogItem:
    (external_id, title, category, price, currency, url, image_url, available, tags,
     created_at, attributes) = row
    return CatalogItem(
        item_id=external_id, title=title or "", category=category or "", price=price,
        currency=currency or "", url=url or "", image_url=image_url or "",
        available=bool(available),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        created=created_at.timestamp() if created_at else 0.0,
        attributes=attributes if isinstance(attributes, dict) else {})


def catalogs_clear() -> None:
    """Forget every snapshot held in this process (tests)."""
    with _lock:
        _catalogs.clear()


# --- upsert and takedown -------------------------------------------------------------

MAX_ITEMS_PER_REQUEST = 1000
TEXT_LIMITS = {"title": 500, "description": 20_000, "category": 200}
URL_RE = re.compile(r"^https?://[^\s]{1,2040}$")


class ItemInvalid(ValueError):
    """An item of an upsert is wrong: ``field`` says where (e.g. ``items[3].price``)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int
    unavailable: int  # items that are now unavailable (taken down), of those sent


def items_upsert(*, site: Site, items: Any) -> UpsertResult:
    """Create or update catalog items by item_id; fields left out keep their values.

    ``available: false`` takes an item down: it leaves every answer at once (the site's
    cached answers are retired and serving processes reload the changed items).
    """
    if not isinstance(items, list) or not items:
        raise ItemInvalid("items", "must be a non-empty list of items")
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise ItemInvalid("items", f"has {len(items)} items; the limit is "
                          f"{MAX_ITEMS_PER_REQUEST} per request")
    cleaned: dict[str, dict[str, Any]] = {}
    for index, raw in enumerate(items):
        item = item_clean(raw, f"items[{index}]")
        cleaned[item.pop("external_id")] = item  # the last of repeated ids wins
    now = timezone.now()
    with transaction.atomic():
        existing = {item.external_id: item for item in
                    Item.objects.select_for_update().filter(site=site,
                                                            external_id__in=list(cleaned))}
        new, changed, fields = [], [], {"updated_at"}
        for external_id, values in cleaned.items():
            item = existing.get(external_id)
            if item is None:
                new.append(Item(site=site, external_id=external_id, updated_at=now, **values))
                continue
            for name, value in values.items():
                setattr(item, name, value)
                fields.add(name)
            item.updated_at = now
            changed.append(item)
        Item.objects.bulk_create(new)
        if changed:
            Item.objects.bulk_update(changed, sorted(fields))
        transaction.on_commit(lambda: answer_cache.site_invalidate(site.pk))
    unavailable = sum(1 for values in cleaned.values() if values.get("available") is False)
    return UpsertResult(created=len(new), updated=len(changed), unavailable=unavailable)


def item_clean(raw: Any, where: str) -> dict[str, Any]:
    """One item of an upsert as Item field values (ItemInvalid if wrong)."""
    if not isinstance(raw, dict):
        raise ItemInvalid(where, "must be an object")
    known = {"item_id", "title", "description", "category", "tags", "price", "currency",
             "url", "image_url", "available", "attributes"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ItemInvalid(f"{where}.{unknown[0][:40]}", f"is not an item field "
                          f"({', '.join(sorted(known))})")
    item_id = raw.get("item_id")
    if isinstance(item_id, int) and not isinstance(item_id, bool):
        item_id = str(item_id)
    if not isinstance(item_id, str) or not item_id.strip() or len(item_id) > 100:
        raise ItemInvalid(f"{where}.item_id", "is required: a string of 1 to 100 characters")
    values: dict[str, Any] = {"external_id": item_id}
    for name, limit in TEXT_LIMITS.items():
        if name in raw:
            values[name] = _text(raw[name], f"{where}.{name}", limit)
    if "tags" in raw:
        tags = raw["tags"]
        if not isinstance(tags, list) or len(tags) > 50:
            raise ItemInvalid(f"{where}.tags", "must be a list of at most 50 strings")
        values["tags"] = [_text(tag, f"{where}.tags[{i}]", 100) for i, tag in enumerate(tags)]
    if "price" in raw:
        values["price"] = _price(raw["price"], f"{where}.price")
    if "currency" in raw:
        currency = _text(raw["currency"], f"{where}.currency", 3)
        if currency and not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise ItemInvalid(f"{where}.currency", "must be a 3-letter code such as EUR")
        values["currency"] = currency.upper()
    for name in ("url", "image_url"):
        if name in raw:
            url = _text(raw[name], f"{where}.{name}", 2048)
            if url and not URL_RE.fullmatch(url):  # match() let a trailing newline in
                raise ItemInvalid(f"{where}.{name}", "must be an http(s) URL")
            values[name] = url
    if "available" in raw:
        if not isinstance(raw["available"], bool):
            raise ItemInvalid(f"{where}.available", "must be true or false")
        values["available"] = raw["available"]
    if "attributes" in raw:
        values["attributes"] = _attributes(raw["attributes"], f"{where}.attributes")
    return values


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ItemInvalid(where, "must be a string")
    if len(value) > limit or "\x00" in value:
        raise ItemInvalid(where, f"must be at most {limit} characters, without NUL")
    return value


def _price(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or \
            not math.isfinite(value) or not 0 <= value <= 1e12:
        raise ItemInvalid(where, "must be a number from 0 to 1e12, or null")
    return float(value)


def _attributes(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > 30:
        raise ItemInvalid(where, "must be an object of at most 30 keys")
    for key, item in value.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", key):
            raise ItemInvalid(f"{where}.{key[:40]}", "is not a valid key (letters, digits, _ . -)")
        scalar = item is None or isinstance(item, bool | str) or (
            isinstance(item, int | float) and math.isfinite(item))
        if not scalar or (isinstance(item, str) and len(item) > 500):
            raise ItemInvalid(f"{where}.{key}", "must be a string (500 at most), a number, "
                              "true, false or null")
    return value
