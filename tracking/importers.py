"""Importing historical events and catalogs from public data set layouts.

Reading is pure: one generator per format turns CSV rows into compact records
(events to be) or skips with a reason, and another turns them into catalog
items. Writing goes through the same code as the API: wire-format events,
``events_clean`` (validation and subject hashes), RawBatch rows in the outbox,
and the processing of ``tracking.processing``. Event ids are uuid5 of the
row, so importing a file twice stores nothing twice.

Consent is not checked: an import is the operator's own historical record.
"""

import csv
import gzip
import math
import re
import time
import uuid
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple, NoReturn, Protocol, TypeVar
from zoneinfo import ZoneInfo

from django.utils import timezone

from tracking.conf import tracking_settings
from tracking.models import Item, RawBatch, Site
from tracking.processing import pending_batches_process
from tracking.services import events_clean, events_serialize, raw_batch_build
from tracking.validation import TimeWindow

ONLINE_RETAIL = "online-retail"
MOVIELENS = "movielens"
RETAILROCKET = "retailrocket"
FORMATS = (ONLINE_RETAIL, MOVIELENS, RETAILROCKET)

ONLINE_RETAIL_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                         "UnitPrice", "CustomerID", "Country")
MOVIELENS_RATINGS_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIELENS_MOVIES_COLUMNS = ("movieId", "title", "genres")
MOVIELENS_TAGS_COLUMNS = ("userId", "movieId", "tag", "timestamp")
RETAILROCKET_COLUMNS = ("timestamp", "visitorid", "event", "itemid", "transactionid")

# Raw user ids become "<prefix><id>", so two data sets imported into one site never share users.
USER_PREFIX = {ONLINE_RETAIL: "retail-", MOVIELENS: "movielens-", RETAILROCKET: "retailrocket-"}

# Fixed forever: event ids of earlier imports must come out the same.
EVENT_ID_NAMESPACE = uuid.UUID("0b9c5a1e-6a43-5c1f-9d0e-2f6b7c1d8e4a")

# The Online Retail shop's invoice dates are UK local time without a zone.
LONDON = ZoneInfo("Europe/London")
# Stock codes of Online Retail that are fees and adjustments, not products to recommend.
ONLINE_RETAIL_SERVICE_CODES = frozenset(
    {"POST", "DOT", "C2", "M", "D", "S", "B", "CRUK", "AMAZONFEE", "BANK CHARGES"}
)
RETAILROCKET_EVENTS = {"view": "view_item", "addtocart": "add_to_cart",
                       "transaction": "purchase"}


class ImportInputError(ValueError):
    """The path, the format or a file's layout is wrong; the message says what to do."""


class Record(NamedTuple):
    """One event to be, compact (a big file's records are all held to sort them by time)."""

    ts_ms: int
    identity: str  # the row's content: the event id is uuid5 of it (plus an occurrence)
    name: str
    user_id: str
    item_id: str
    item_name: str = ""
    quantity: int | None = None
    price: float | None = None
    value: float | None = None
    currency: str = ""
    transaction_id: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class Skip:
    """A row that makes no event, and why (counted in the summary)."""

    reason: str


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """Catalog fields of one item, as a format provides them."""

    external_id: str
    title: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    price: float | None = None
    currency: str = ""
    available: bool = True


# --- reading: pure generators per format -------------------------------------


def online_retail_records(rows: Iterable[Mapping[str, str]]) -> Iterator[Record | Skip]:
    """One purchase (or, for an invoice starting with C, a refund) per line with a customer."""
    for row in rows:
        yield _online_retail_record(row)


def _online_retail_record(row: Mapping[str, str]) -> Record | Skip:
    customer = (row["CustomerID"] or "").strip()
    if not customer:
        return Skip("no_customer_id")
    try:
        invoice, code = row["InvoiceNo"].strip(), row["StockCode"].strip()
        quantity, price = int(row["Quantity"]), float(row["UnitPrice"])
        ts_ms = online_retail_epoch_ms(row["InvoiceDate"])
    except (ValueError, TypeError, AttributeError):
        return Skip("malformed")
    if not invoice or not code or not math.isfinite(price):
        return Skip("malformed")
    refund = invoice.upper().startswith("C")
    if quantity == 0 or (quantity < 0 and not refund):
        return Skip("stock_adjustment")  # damaged or lost stock, not a sale
    customer = integral_id(customer)
    quantity = abs(quantity)  # GA4 reports refunds with positive quantities and value
    return Record(
        ts_ms=ts_ms, identity=f"{invoice}|{code}|{quantity}|{ts_ms}|{price!r}|{customer}",
        name="refund" if refund else "purchase", user_id=USER_PREFIX[ONLINE_RETAIL] + customer,
        item_id=code, item_name=(row["Description"] or "").strip(), quantity=quantity,
        price=price, value=round(quantity * price, 6), currency="GBP", transaction_id=invoice,
        country=(row["Country"] or "").strip(),
    )


_NEVER = -(2**62)  # earlier than any epoch millisecond


def online_retail_items(rows: Iterable[Mapping[str, str]]) -> Iterator[CatalogItem]:
    """Each stock code with its latest description and latest positive unit price (GBP)."""
    titles: dict[str, tuple[int, str]] = {}
    prices: dict[str, tuple[int, float]] = {}
    for row in rows:
        try:
            code, when = row["StockCode"].strip(), online_retail_epoch_ms(row["InvoiceDate"])
            price = float(row["UnitPrice"])
        except (ValueError, TypeError, AttributeError):
            continue
        if not code:
            continue
        title = (row["Description"] or "").strip()
        titles.setdefault(code, (_NEVER, ""))  # any titled row beats no title at all
        if title and when >= titles[code][0]:
            titles[code] = (when, title)
        if price > 0 and math.isfinite(price) and when >= prices.get(code, (_NEVER, 0.0))[0]:
            prices[code] = (when, price)
    for code, (_, title) in titles.items():
        price = prices[code][1] if code in prices else None
        yield CatalogItem(external_id=code[:100], title=title[:500], price=price,
                          currency="GBP" if price is not None else "",
                          available=code.upper() not in ONLINE_RETAIL_SERVICE_CODES)


def online_retail_epoch_ms(value: str) -> int:
    """Epoch milliseconds of an InvoiceDate: ISO (2011-10-30 16:17:00) or Excel's 12/1/2010 8:26."""
    value = value.strip()
    try:
        local = datetime.fromisoformat(value)
    except ValueError:
        local = datetime.strptime(value, "%m/%d/%Y %H:%M")
    return round(local.replace(tzinfo=LONDON).timestamp() * 1000)


def integral_id(value: str) -> str:
    """An id without the '.0' a spreadsheet adds to numbers: '12345.0' -> '12345'."""
    return re.sub(r"^(\d+)\.0+$", r"\1", value.strip())


def movielens_records(rows: Iterable[Mapping[str, str]]) -> Iterator[Record | Skip]:
    """One ``rate_item`` event per rating, with the rating as params.value."""
    for row in rows:
        try:
            user, movie = row["userId"].strip(), row["movieId"].strip()
            rating, seconds = float(row["rating"]), int(row["timestamp"])
        except (ValueError, TypeError, AttributeError):
            yield Skip("malformed")
            continue
        if not user or not movie or not math.isfinite(rating):
            yield Skip("malformed")
            continue
        yield Record(ts_ms=seconds * 1000, identity=f"{user}|{movie}|{rating!r}|{seconds}",
                     name="rate_item", user_id=USER_PREFIX[MOVIELENS] + user, item_id=movie,
                     value=rating)


def movielens_items(movies: Iterable[Mapping[str, str]],
                    tags: Iterable[Mapping[str, str]]) -> Iterator[CatalogItem]:
    """Each movie: its title, its first genre as category, genres and user tags as tags."""
    user_tags: dict[str, Counter[str]] = defaultdict(Counter)
    for row in tags:
        tag = " ".join((row["tag"] or "").split()).lower()
        if tag:
            user_tags[(row["movieId"] or "").strip()][tag] += 1
    for row in movies:
        movie = row["movieId"].strip()
        genres = [g.strip() for g in (row["genres"] or "").split("|")
                  if g.strip() and g.strip() != "(no genres listed)"]
        # The most used tags first; dict.fromkeys dedupes and keeps that order.
        named = [g.lower() for g in genres] + [t for t, _ in user_tags[movie].most_common()]
        yield CatalogItem(external_id=movie[:100], title=(row["title"] or "").strip()[:500],
                          category=genres[0][:200] if genres else "",
                          tags=tuple(dict.fromkeys(named)))


def retailrocket_records(rows: Iterable[Mapping[str, str]]) -> Iterator[Record | Skip]:
    """Kaggle RetailRocket events.csv: view, addtocart, transaction -> GA4 names."""
    for row in rows:
        name = RETAILROCKET_EVENTS.get((row["event"] or "").strip())
        if name is None:
            yield Skip("unknown_event")
            continue
        try:
            ts_ms = int(row["timestamp"])
            visitor, item = row["visitorid"].strip(), row["itemid"].strip()
        except (ValueError, TypeError, AttributeError):
            yield Skip("malformed")
            continue
        if not visitor or not item:
            yield Skip("malformed")
            continue
        transaction_id = (row["transactionid"] or "").strip()
        yield Record(ts_ms=ts_ms, identity=f"{ts_ms}|{visitor}|{name}|{item}|{transaction_id}",
                     name=name, user_id=USER_PREFIX[RETAILROCKET] + visitor, item_id=item,
                     transaction_id=integral_id(transaction_id))


def wire_event(record: Record, occurrence: int, *, format: str) -> dict[str, Any]:
    """The record as the API receives an event (GA4 shape), with a deterministic event id."""
    item: dict[str, Any] = {"item_id": record.item_id}
    if record.item_name:
        item["item_name"] = record.item_name
    if record.price is not None:
        item["price"] = record.price
    if record.quantity is not None:
        item["quantity"] = record.quantity
    params: dict[str, Any] = {}
    if record.transaction_id:
        params["transaction_id"] = record.transaction_id
    if record.value is not None:
        params["value"] = record.value
    if record.currency:
        params["currency"] = record.currency
    event: dict[str, Any] = {
        "event_id": str(event_id(format, record.identity, occurrence)), "name": record.name,
        "ts": record.ts_ms, "user_id": record.user_id, "items": [item], "params": params,
    }
    if record.country:
        event["context"] = {"country": record.country}
    return event


def event_id(format: str, identity: str, occurrence: int) -> uuid.UUID:
    """The id of the ``occurrence``-th (from 0) row with this identity in a file of a format."""
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{format}|{identity}|{occurrence}")


def numbered(records: Iterable[Record]) -> Iterator[tuple[Record, int]]:
    """Each record with its occurrence among identical rows; records sorted by (ts, identity)."""
    previous, occurrence = None, 0
    for record in records:
        occurrence = occurrence + 1 if record.identity == previous else 0
        previous = record.identity
        yield record, occurrence


# --- files ----------------------------------------------------------------------


@contextmanager
def csv_rows(path: Path, columns: tuple[str, ...]) -> Iterator[Iterator[dict[str, str]]]:
    """Rows of a .csv or .csv.gz file as dicts, once its header has these columns."""
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    reader = None
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            found = list(reader.fieldnames or [])
            missing = [column for column in columns if column not in found]
            if missing:
                raise ImportInputError(
                    f"{path}: wrong CSV header. Expected the columns {', '.join(columns)}; "
                    f"found {', '.join(found) or 'no header'} (missing: {', '.join(missing)})."
                )
            yield reader
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
        line = f" near line {reader.line_num}" if reader is not None else ""
        raise ImportInputError(f"{path}: cannot be read{line}: {error}") from None


def _records_of(path: Path, columns: tuple[str, ...],
                parse: Callable[[Iterable[Mapping[str, str]]], Iterator[Record | Skip]]
                ) -> Iterator[Record | Skip]:
    with csv_rows(path, columns) as rows:
        yield from parse(rows)


def _online_retail_catalog(path: Path) -> Iterator[CatalogItem]:
    with csv_rows(path, ONLINE_RETAIL_COLUMNS) as rows:
        yield from online_retail_items(rows)


def _movielens_catalog(movies: Path, tags: Path | None) -> Iterator[CatalogItem]:
    with csv_rows(movies, MOVIELENS_MOVIES_COLUMNS) as movie_rows:
        if tags is None:
            yield from movielens_items(movie_rows, ())
            return
        with csv_rows(tags, MOVIELENS_TAGS_COLUMNS) as tag_rows:
            yield from movielens_items(movie_rows, tag_rows)


@dataclass(frozen=True)
class Source:
    """A checked input: how to read its records and its catalog, and which fields it fills."""

    records: Callable[[], Iterator[Record | Skip]]
    items: Callable[[], Iterator[CatalogItem]]
    item_fields: tuple[str, ...]


def source_open(*, format: str, path: Path) -> Source:
    """Check the path and every file's header for this format; raise ImportInputError if wrong."""
    if format not in FORMATS:
        raise ImportInputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise ImportInputError(f"{path} does not exist")
    if format == MOVIELENS:
        return _movielens_source(path)
    if path.is_dir():
        raise ImportInputError(f"{path} is a directory; {format} reads one .csv or .csv.gz file")
    if format == ONLINE_RETAIL:
        _header_check(path, ONLINE_RETAIL_COLUMNS)
        return Source(records=lambda: _records_of(path, ONLINE_RETAIL_COLUMNS,
                                                  online_retail_records),
                      items=lambda: _online_retail_catalog(path),
                      item_fields=("title", "price", "currency", "available"))
    _header_check(path, RETAILROCKET_COLUMNS)
    return Source(records=lambda: _records_of(path, RETAILROCKET_COLUMNS, retailrocket_records),
                  items=lambda: iter(()), item_fields=())


def _movielens_source(path: Path) -> Source:
    folder = path.parent if path.is_file() else path  # ratings.csv given: use its folder
    ratings = _find(folder, "ratings") or _missing(folder, "ratings")
    movies = _find(folder, "movies") or _missing(folder, "movies")
    tags = _find(folder, "tags")  # optional: without it, genres are the only tags
    _header_check(ratings, MOVIELENS_RATINGS_COLUMNS)
    _header_check(movies, MOVIELENS_MOVIES_COLUMNS)
    if tags is not None:
        _header_check(tags, MOVIELENS_TAGS_COLUMNS)
    return Source(records=lambda: _records_of(ratings, MOVIELENS_RATINGS_COLUMNS,
                                              movielens_records),
                  items=lambda: _movielens_catalog(movies, tags),
                  item_fields=("title", "category", "tags"))


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.csv", f"{stem}.csv.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing(folder: Path, stem: str) -> NoReturn:
    raise ImportInputError(f"{folder}: no {stem}.csv or {stem}.csv.gz; movielens reads the "
                           "ml-latest-small directory (ratings, movies, tags)")


def _header_check(path: Path, columns: tuple[str, ...]) -> None:
    with csv_rows(path, columns):
        pass


# --- writing ---------------------------------------------------------------------


class Progress(Protocol):
    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


# Called as factory(desc=..., total=..., unit=...); tqdm is one.
ProgressFactory = Callable[..., Progress]


class _NoProgress:
    def update(self, n: int = 1) -> object:
        return None

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, each row and event accounted for once.

    rows_read = accepted + sum(rejected) + sum(skipped), and
    accepted = stored + duplicates + sum(dropped) + processed_elsewhere.
    """

    format: str
    rows_read: int
    skipped: dict[str, int]  # rows that make no event, by reason
    accepted: int
    rejected: dict[str, int]  # events refused by validation, by reason
    stored: int
    duplicates: int
    dropped: dict[str, int]  # other drops of processing (bots, noise), by reason
    processed_elsewhere: int  # events of batches a worker processed meanwhile
    older_than_retention: int  # events the site's retention purge will delete
    batches: int
    items_upserted: int
    seconds: float


@dataclass
class _Tally:
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    elsewhere: int = 0
    batches: int = 0


def events_import(*, site: Site, format: str, path: Path | str,
                  progress: ProgressFactory | None = None, chunk_size: int = 2000,
                  chunks_per_process: int = 5) -> ImportSummary:
    """Import a file (or MovieLens folder) of a format into a site: catalog, then events."""
    started = time.monotonic()
    source = source_open(format=format, path=Path(path))
    items_upserted = items_upsert(site=site, items=source.items(), fields=source.item_fields)
    records, skipped = _records_read(source, progress)
    horizon = timezone.now() - timedelta(days=site.retention_days)
    too_old = bisect_left(records, horizon.timestamp() * 1000, key=lambda r: r.ts_ms)
    tally = _records_write(site=site, format=format, records=records, progress=progress,
                           chunk_size=chunk_size, chunks_per_process=chunks_per_process)
    outcomes = tally.outcomes
    return ImportSummary(
        format=format, rows_read=len(records) + sum(skipped.values()), skipped=dict(skipped),
        accepted=tally.accepted, rejected=dict(tally.rejected), stored=outcomes["stored"],
        duplicates=outcomes["duplicate"],
        dropped={reason: n for reason, n in outcomes.items() if n and reason not in
                 ("accepted", "stored", "duplicate") and not reason.startswith("rejected_")},
        processed_elsewhere=tally.elsewhere, older_than_retention=too_old, batches=tally.batches,
        items_upserted=items_upserted, seconds=round(time.monotonic() - started, 2),
    )


def items_upsert(*, site: Site, items: Iterable[CatalogItem], fields: tuple[str, ...],
                 chunk_size: int = 1000) -> int:
    """Insert or update these catalog items (only ``fields`` change on existing ones)."""
    count = 0
    for chunk in chunked(items, chunk_size):
        rows = [Item(site=site, **{**asdict(item), "tags": list(item.tags)}) for item in chunk]
        Item.objects.bulk_create(rows, update_conflicts=True, unique_fields=["site", "external_id"],
                                 update_fields=[*fields, "updated_at"])
        count += len(rows)
    return count


def _records_read(source: Source, progress: ProgressFactory | None
                  ) -> tuple[list[Record], Counter[str]]:
    """All records sorted by time (sessions are cut from nearby events), and the skips."""
    bar = (progress or _no_progress)(desc="reading", total=None, unit=" rows")
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    rows = 0
    try:
        for parsed in source.records():
            rows += 1
            if isinstance(parsed, Skip):
                skipped[parsed.reason] += 1
            else:
                records.append(parsed)
            if rows % 1000 == 0:
                bar.update(1000)
        bar.update(rows % 1000)
    finally:
        bar.close()
    records.sort(key=lambda record: (record.ts_ms, record.identity))
    return records, skipped


def _records_write(*, site: Site, format: str, records: list[Record],
                   progress: ProgressFactory | None, chunk_size: int,
                   chunks_per_process: int) -> _Tally:
    """Clean the events in chunks, store each as a RawBatch, process every few of them."""
    window = TimeWindow(received_at=timezone.now(), sent_at=None, max_future=None, max_age=None,
                        max_skew=tracking_settings.MAX_CLOCK_SKEW)
    tally = _Tally()
    pending: list[RawBatch] = []
    bar = (progress or _no_progress)(desc="importing", total=len(records), unit=" events")
    try:
        for chunk in chunked(numbered(records), chunk_size):
            events = [wire_event(record, occurrence, format=format)
                      for record, occurrence in chunk]
            batch = _raw_batch(site=site, events=events, window=window, tally=tally)
            if batch is not None:
                pending.append(batch)
            if len(pending) >= chunks_per_process:
                _batches_store_and_process(pending, tally)
                pending = []
            bar.update(len(chunk))
        _batches_store_and_process(pending, tally)
    finally:
        bar.close()
    return tally


def _raw_batch(*, site: Site, events: list[dict[str, Any]], window: TimeWindow,
               tally: _Tally) -> RawBatch | None:
    """An unsaved RawBatch of the events that pass validation (as the collect API stores)."""
    cleaned, rejected = events_clean(site=site, events=events, window=window)
    kept, too_large = events_serialize(cleaned=cleaned)
    rejected += too_large
    tally.accepted += kept.count
    tally.rejected.update(rejection.reason for rejection in rejected)
    if not kept.count and not rejected:
        return None
    return raw_batch_build(site=site, source=RawBatch.Source.IMPORT, received_at=timezone.now(),
                           sent_at=None, user_agent="", events=kept, rejected=rejected)


def _batches_store_and_process(batches: list[RawBatch], tally: _Tally) -> None:
    """Insert these batches, then process them (only them: the summary counts exactly them)."""
    if not batches:
        return
    created = RawBatch.objects.bulk_create(batches)
    tally.batches += len(created)
    # A batch a worker has taken meanwhile is its to finish (counted as "elsewhere").
    ids = [batch.pk for batch in created]
    result, taken = pending_batches_process(limit=len(ids), ids=ids)
    tally.outcomes.update(result.outcomes)
    tally.elsewhere += sum(batch.n_events for batch in created if batch.pk not in taken)


T = TypeVar("T")


def chunked(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter); itertools.batched needs Python 3.12."""
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _no_progress(**_: Any) -> Progress:
    return _NoProgress()
