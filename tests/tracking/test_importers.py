"""Imports of real data slices: counts against the files, idempotence, the catalog, errors."""

import csv
import gzip
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from tracking.importers import (
    ONLINE_RETAIL,
    Record,
    event_id,
    events_import,
    numbered,
    online_retail_epoch_ms,
)
from tracking.models import DailyCount, Event, Item, RawBatch
from tracking.selectors import event_count, outcome_totals
from tracking.services import site_create, subject_hash

DATA = Path(__file__).resolve().parent.parent / "data"
RETAIL = DATA / "online_retail_300.csv.gz"  # the first 300 rows of the UCI sample
MOVIELENS = DATA / "movielens"  # ratings of users 1-5, their movies, those movies' tags
LONDON = ZoneInfo("Europe/London")


def csv_dicts(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def import_command(*args: str) -> str:
    out = StringIO()
    call_command("import_events", *args, stdout=out, stderr=StringIO(), verbosity=0)
    return out.getvalue()


def events(site, **filters):
    return Event.objects.filter(site=site, item_index=0, **filters)


# --- Online Retail ----------------------------------------------------------


def test_online_retail_counts_match_the_file(site):
    rows = csv_dicts(RETAIL)
    customers = [r for r in rows if r["CustomerID"].strip()]
    refunds = [r for r in customers if r["InvoiceNo"].startswith("C")]

    summary = events_import(site=site, format="online-retail", path=RETAIL)

    assert summary.rows_read == len(rows) == 300
    assert summary.skipped == {"no_customer_id": len(rows) - len(customers)}
    assert summary.accepted == summary.stored == len(customers)
    assert summary.rejected == {} and summary.duplicates == 0 and summary.dropped == {}
    assert events(site, name="purchase").count() == len(customers) - len(refunds)
    assert events(site, name="refund").count() == len(refunds) > 0
    assert set(events(site).values_list("user_subject", flat=True)) == {
        subject_hash(site=site, kind="u", raw_id="retail-" + r["CustomerID"].removesuffix(".0"))
        for r in customers
    }
    assert RawBatch.objects.filter(site=site, source=RawBatch.Source.IMPORT).count() == 1


def test_second_import_stores_nothing_new_and_counts_duplicates(site):
    first = events_import(site=site, format="online-retail", path=RETAIL)
    ids_before = set(events(site).values_list("event_id", flat=True))

    second = events_import(site=site, format="online-retail", path=RETAIL)

    assert second.accepted == first.accepted > 0
    assert second.stored == 0
    assert second.duplicates == first.accepted
    assert set(events(site).values_list("event_id", flat=True)) == ids_before
    assert Event.objects.filter(site=site).count() == first.stored
    assert Item.objects.filter(site=site).count() == first.items_upserted
    assert outcome_totals(site=site)["duplicate"] == first.accepted


def test_outcomes_are_conserved(site):
    events_import(site=site, format="online-retail", path=RETAIL)
    events_import(site=site, format="movielens", path=MOVIELENS)
    events_import(site=site, format="online-retail", path=RETAIL)

    totals = outcome_totals(site=site)
    drops = sum(n for outcome, n in totals.items()
                if outcome not in ("accepted", "stored") and not outcome.startswith("rejected_"))
    assert totals["accepted"] == totals["stored"] + drops
    assert totals["stored"] == event_count(site=site) == 225 + 560


def test_catalog_has_latest_titles_and_prices(site):
    latest: dict[str, tuple[str, str]] = {}  # code -> (date, price), ISO dates sort as strings
    titles: dict[str, tuple[str, str]] = {}
    for row in csv_dicts(RETAIL):
        code, when = row["StockCode"], row["InvoiceDate"]
        if float(row["UnitPrice"]) > 0 and when >= latest.get(code, ("", ""))[0]:
            latest[code] = (when, row["UnitPrice"])
        if row["Description"].strip() and when >= titles.get(code, ("", ""))[0]:
            titles[code] = (when, row["Description"].strip())
        titles.setdefault(code, ("", ""))

    summary = events_import(site=site, format="online-retail", path=RETAIL)

    items = {i.external_id: i for i in Item.objects.filter(site=site)}
    assert summary.items_upserted == len(items) == len(titles)
    assert {code: item.title for code, item in items.items()} == {
        code: title for code, (_, title) in titles.items()}
    assert {code: item.price for code, item in items.items() if item.price is not None} == {
        code: float(price) for code, (_, price) in latest.items()}
    assert items["85123A"].price == 2.55 and items["85123A"].currency == "GBP"  # 2.95 earlier
    assert items["POST"].available is False and items["85123A"].available is True


def test_reimport_updates_catalog_fields_it_owns_only(site):
    events_import(site=site, format="online-retail", path=RETAIL)
    Item.objects.filter(site=site, external_id="85123A").update(
        price=99.0, url="https://shop.example/p/85123A")

    events_import(site=site, format="online-retail", path=RETAIL)

    item = Item.objects.get(site=site, external_id="85123A")
    assert item.price == 2.55
    assert item.url == "https://shop.example/p/85123A"


def test_cancellation_becomes_refund_with_positive_amounts(site):
    row = next(r for r in csv_dicts(RETAIL)
               if r["InvoiceNo"].startswith("C") and r["CustomerID"])
    events_import(site=site, format="online-retail", path=RETAIL)

    event = events(site, context__params__transaction_id=row["InvoiceNo"]).get()
    assert event.name == "refund"
    assert event.quantity == abs(int(row["Quantity"])) > 0
    assert event.value == pytest.approx(abs(int(row["Quantity"])) * float(row["UnitPrice"]))
    assert event.currency == "GBP"
    assert event.item_id == row["StockCode"]
    assert event.context["country"] == row["Country"]
    assert event.source == RawBatch.Source.IMPORT


def test_invoice_dates_are_london_local_time(site):
    assert online_retail_epoch_ms("2011-07-01 12:00:00") == 1309518000000  # BST: 11:00 UTC
    assert online_retail_epoch_ms("2011-01-10 12:00:00") == 1294660800000  # GMT: 12:00 UTC
    assert online_retail_epoch_ms("1/10/2011 12:00") == 1294660800000  # the Excel export
    row = next(r for r in csv_dicts(RETAIL) if r["CustomerID"] and r["InvoiceDate"][5:7] == "07")
    events_import(site=site, format="online-retail", path=RETAIL)
    local = datetime.fromisoformat(row["InvoiceDate"])
    stored = events(site, context__params__transaction_id=row["InvoiceNo"]).first()
    assert stored.ts == local.replace(tzinfo=UTC) - timedelta(hours=1)  # July: BST


def test_identical_rows_are_distinct_events(site, tmp_path):
    rows = csv_dicts(RETAIL)
    row = next(r for r in rows if r["CustomerID"])
    path = write_csv(tmp_path / "dup.csv", list(row), [list(row.values())] * 3)

    first = events_import(site=site, format="online-retail", path=path)
    second = events_import(site=site, format="online-retail", path=path)

    assert (first.stored, second.stored, second.duplicates) == (3, 0, 3)
    assert events(site).count() == 3


def test_event_ids_are_deterministic_per_occurrence():
    record = Record(ts_ms=1, identity="x", name="purchase", user_id="retail-1", item_id="a")
    other = record._replace(identity="y")
    numbered_ids = [event_id(ONLINE_RETAIL, r.identity, n)
                    for r, n in numbered([record, record, other])]
    assert [n for _, n in numbered([record, record, other])] == [0, 1, 0]
    assert len(set(numbered_ids)) == 3
    assert numbered_ids[0] == event_id(ONLINE_RETAIL, "x", 0)
    assert event_id("movielens", "x", 0) != numbered_ids[0]


def test_chunking_does_not_change_events_or_sessions(db):
    small = site_create(name="Small chunks", origins=[]).site
    whole = site_create(name="One chunk", origins=[]).site

    chunked = events_import(site=small, format="online-retail", path=RETAIL, chunk_size=7,
                            chunks_per_process=2)
    single = events_import(site=whole, format="online-retail", path=RETAIL)

    assert chunked.batches == 33 and single.batches == 1  # 225 events
    assert chunked.stored == single.stored == 225

    def sessions(site) -> set[frozenset]:
        groups = defaultdict(set)
        for event_id_, session in events(site).values_list("event_id", "session"):
            groups[session].add(event_id_)
        return {frozenset(ids) for ids in groups.values()}

    assert sessions(small) == sessions(whole)
    assert len(sessions(whole)) < 225  # lines of one invoice share a session


def test_rows_are_sorted_by_time_before_chunking(site, tmp_path):
    header = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
              "CustomerID", "Country"]
    later = ["600001", "85123A", "LANTERN", "1", "2011-05-02 10:10:00", "2.55", "12346.0", "UK"]
    earlier = ["600002", "22423", "CAKESTAND", "1", "2011-05-02 10:00:00", "12.75", "12346.0",
               "UK"]
    path = write_csv(tmp_path / "two.csv", header, [later, earlier])

    summary = events_import(site=site, format="online-retail", path=path, chunk_size=1,
                            chunks_per_process=1)

    assert summary.batches == 2
    # One chunk each, processed one after the other: ten minutes apart is one session
    # only when the earlier purchase was processed first.
    assert events(site).values("session").distinct().count() == 1
    first = RawBatch.objects.filter(site=site).order_by("id").first()
    assert '"transaction_id":"600002"' in first.events


def test_progress_counts_every_row_and_event(site):
    seen: Counter = Counter()

    class Bar:
        def __init__(self, desc: str, total: int | None, unit: str) -> None:
            self.desc = desc

        def update(self, n: int = 1) -> None:
            seen[self.desc] += n

        def close(self) -> None:
            seen["closed"] += 1

    events_import(site=site, format="online-retail", path=RETAIL, progress=Bar)
    assert seen == {"reading": 300, "importing": 225, "closed": 2}


# --- MovieLens --------------------------------------------------------------


def test_movielens_ratings_become_rate_item_events(site):
    ratings = csv_dicts(MOVIELENS / "ratings.csv.gz")

    summary = events_import(site=site, format="movielens", path=MOVIELENS)

    assert summary.rows_read == summary.stored == len(ratings) == 560
    assert events(site, name="rate_item").count() == len(ratings)
    assert len(set(events(site).values_list("user_subject", flat=True))) == len(
        {r["userId"] for r in ratings})
    rating = ratings[17]
    stored = events(site, item_id=rating["movieId"],
                    user_subject=subject_hash(site=site, kind="u",
                                              raw_id="movielens-" + rating["userId"])).get()
    assert stored.value == float(rating["rating"])
    assert stored.ts == datetime.fromtimestamp(int(rating["timestamp"]), tz=UTC)


def test_movielens_catalog_has_titles_genres_and_tags(site):
    movies = {m["movieId"]: m for m in csv_dicts(MOVIELENS / "movies.csv.gz")}
    tags = defaultdict(set)
    for row in csv_dicts(MOVIELENS / "tags.csv.gz"):
        tags[row["movieId"]].add(row["tag"].strip().lower())

    summary = events_import(site=site, format="movielens", path=MOVIELENS)

    assert summary.items_upserted == Item.objects.filter(site=site).count() == len(movies)
    movie_id = max(tags, key=lambda m: len(tags[m]))  # the most tagged movie
    item = Item.objects.get(site=site, external_id=movie_id)
    genres = movies[movie_id]["genres"].split("|")
    assert item.title == movies[movie_id]["title"]
    assert item.category == genres[0]
    assert item.tags[:len(genres)] == [g.lower() for g in genres]
    assert set(item.tags) == {g.lower() for g in genres} | tags[movie_id]
    assert len(item.tags) == len(set(item.tags))


def test_movielens_path_may_name_the_ratings_file(site):
    summary = events_import(site=site, format="movielens", path=MOVIELENS / "ratings.csv.gz")
    assert summary.stored == 560


# --- RetailRocket -----------------------------------------------------------


def test_retailrocket_layout(site, tmp_path):
    # A format fixture in the layout of Kaggle's events.csv, not data: we do not ship that file.
    path = write_csv(tmp_path / "events.csv",
                     ["timestamp", "visitorid", "event", "itemid", "transactionid"], [
                         ["1433221332117", "257597", "view", "355908", ""],
                         ["1433224214164", "992329", "view", "248676", ""],
                         ["1433221999827", "111016", "addtocart", "355908", ""],
                         ["1433223236124", "111016", "transaction", "355908", "4000"],
                         ["1433223236125", "111016", "wishlist", "355908", ""],
                         ["1433223236126", "111016", "view", "x" * 101, ""],
                     ])

    summary = events_import(site=site, format="retailrocket", path=path)

    assert summary.rows_read == 6
    assert summary.skipped == {"unknown_event": 1}
    assert summary.rejected == {"invalid": 1}  # an item id longer than the API allows
    assert summary.accepted == summary.stored == 4
    assert summary.rows_read == (summary.accepted + sum(summary.rejected.values())
                                 + sum(summary.skipped.values()))
    assert Counter(events(site).values_list("name", flat=True)) == {
        "view_item": 2, "add_to_cart": 1, "purchase": 1}
    purchase = events(site, name="purchase").get()
    assert purchase.context["params"] == {"transaction_id": "4000"}
    assert purchase.ts == datetime.fromtimestamp(1433223236.124, tz=UTC)
    assert outcome_totals(site=site)["rejected_invalid"] == 1
    assert summary.items_upserted == 0


# --- the command ------------------------------------------------------------


def test_command_prints_the_summary(site):
    output = import_command("--format", "online-retail", str(RETAIL))
    assert "Imported online-retail into 'Shop'" in output
    assert "rows read                 300" in output
    assert "rows skipped               75  (no_customer_id 75)" in output
    assert "stored                  225" in output
    assert "items upserted            275" in output
    assert "Warning: 225 events are older than this site's retention (395 days)" in output
    assert events(site).count() == 225


def test_events_past_the_sites_retention_are_counted(site):
    site.retention_days = (datetime.now(UTC) - datetime(2010, 12, 1, tzinfo=UTC)).days - 180
    site.save()
    summary = events_import(site=site, format="online-retail", path=RETAIL)
    rows = csv_dicts(RETAIL)
    horizon = datetime.now(UTC) - timedelta(days=site.retention_days)
    expected = sum(1 for r in rows if r["CustomerID"]
                   and datetime.fromisoformat(r["InvoiceDate"]).replace(tzinfo=LONDON) < horizon)
    assert 0 < summary.older_than_retention == expected < 225


def test_bad_header_names_expected_and_found_columns(site, tmp_path):
    path = write_csv(tmp_path / "retail.csv",
                     ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate",
                      "Price", "Customer ID", "Country"], [])
    with pytest.raises(CommandError) as info:
        import_command("--format", "online-retail", str(path))
    message = str(info.value)
    assert "expected the columns InvoiceNo, StockCode" in message.replace("Expected", "expected")
    assert "found Invoice, StockCode, Description" in message
    assert "missing: InvoiceNo, UnitPrice, CustomerID" in message
    assert not Item.objects.exists() and not RawBatch.objects.exists()


def test_movielens_folder_without_movies_is_an_error(site, tmp_path):
    write_csv(tmp_path / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], [])
    with pytest.raises(CommandError, match=r"no movies\.csv or movies\.csv\.gz"):
        import_command("--format", "movielens", str(tmp_path))


def test_missing_path_and_unknown_format_are_errors(site, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        import_command("--format", "online-retail", str(tmp_path / "nope.csv"))
    with pytest.raises(CommandError, match="invalid choice: 'netflix'"):
        import_command("--format", "netflix", str(RETAIL))


def test_site_by_key_or_name_and_errors(db):
    with pytest.raises(CommandError, match="no site yet"):
        import_command("--format", "online-retail", str(RETAIL))
    shop = site_create(name="Shop", origins=[]).site
    other = site_create(name="Other", origins=[]).site

    with pytest.raises(CommandError) as info:
        import_command("--format", "online-retail", str(RETAIL))
    assert "--site" in str(info.value) and other.public_key in str(info.value)
    with pytest.raises(CommandError, match="no site has the public key or name 'Nope'"):
        import_command("--format", "online-retail", str(RETAIL), "--site", "Nope")

    import_command("--format", "online-retail", str(RETAIL), "--site", other.public_key)
    import_command("--format", "movielens", str(MOVIELENS), "--site", "Shop")
    assert (event_count(site=other), event_count(site=shop)) == (225, 560)
    assert DailyCount.objects.filter(site=other, outcome="stored").get().count == 225


# --- the demo ---------------------------------------------------------------


def test_demo_setup_runs_once_and_then_only_checks(db, settings, tmp_path):
    from django.contrib.auth import get_user_model

    from tracking.models import Site

    settings.DATA_DIR = tmp_path

    def demo_setup(port: str) -> str:
        out = StringIO()
        call_command("demo_setup", "--port", port, "--data", str(RETAIL), stdout=out,
                     verbosity=0)
        return out.getvalue()

    first = demo_setup("8123")
    password = first.split("with the password ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    site = Site.objects.get(name="Demo gift shop")
    assert site.allowed_origins == ["http://127.0.0.1:8123"]
    assert event_count(site=site) == 225

    second = demo_setup("8124")
    assert password not in second and "with the password" not in second
    assert "Sample already imported" in second
    assert Site.objects.count() == 1 and get_user_model().objects.count() == 1
    site.refresh_from_db()
    assert site.allowed_origins == ["http://127.0.0.1:8123", "http://127.0.0.1:8124"]
    assert outcome_totals(site=site).get("duplicate", 0) == 0  # not imported again
