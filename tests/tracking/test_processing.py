"""The drain: dedupe, bots, sessions, noise, bulk insert, counts, idempotence, conservation."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.conftest import iso, make_event
from tracking import pipeline
from tracking.models import DailyCount, Event, RawBatch
from tracking.privacy.retention import site_retention_purge
from tracking.processing import outbox_drain, raw_batches_process
from tracking.selectors import outcome_totals

BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")


def at(seconds_ago: float) -> str:
    return iso(datetime.now(UTC) - timedelta(seconds=seconds_ago))


def drops(site) -> dict[str, int]:
    return outcome_totals(site=site)


def assert_conserved(site) -> None:
    totals = outcome_totals(site=site)
    kept_or_dropped = sum(n for outcome, n in totals.items()
                          if outcome not in ("accepted",) and not outcome.startswith("rejected"))
    assert totals.get("accepted", 0) == kept_or_dropped, totals
    assert totals.get("stored", 0) == Event.objects.filter(site=site, item_index=0).count()


def test_rows_have_typed_columns(consented_api, site):
    event = make_event(
        name="purchase", items=[{"item_id": "sku-1", "price": 10.0, "quantity": 2},
                                {"item_id": "sku-2", "price": 5.5}],
        params={"value": 25.5, "currency": "eur", "transaction_id": "T1", "rec_token": "tok",
                "engaged_ms": 1200, "scroll_pct": 50},
    )
    consented_api.collect([event], HTTP_USER_AGENT=BROWSER_UA)
    assert outbox_drain().stored == 1
    rows = list(Event.objects.order_by("item_index"))
    assert [(r.item_index, r.item_id, r.value, r.quantity) for r in rows] == [
        (0, "sku-1", 20.0, 2), (1, "sku-2", 5.5, None)]
    first = rows[0]
    assert str(first.event_id) == event["event_id"]
    assert first.name == "purchase" and first.currency == "EUR" and first.rec_token == "tok"
    assert first.engaged_ms == 1200 and first.scroll_pct == 50 and first.source == "browser"
    assert first.context["params"] == {"transaction_id": "T1"}
    assert first.context["device"] == "mobile" and first.context["page"]["title"] == "Lamp"
    assert first.ts.tzinfo is not None
    assert RawBatch.objects.get().processed_at is not None


def test_duplicates_within_and_across_batches(consented_api, site):
    event = make_event()
    consented_api.collect([event, event])
    consented_api.collect([event])
    outbox_drain()
    assert Event.objects.filter(item_index=0).count() == 1
    assert drops(site)["duplicate"] == 2
    consented_api.collect([event])  # a retry long after: still a duplicate
    outbox_drain()
    assert Event.objects.filter(item_index=0).count() == 1
    assert drops(site)["duplicate"] == 3
    assert_conserved(site)


def test_crawler_user_agent_is_dropped(consented_api, site):
    consented_api.collect([make_event(), make_event()], HTTP_USER_AGENT=BOT_UA)
    consented_api.collect([make_event()], HTTP_USER_AGENT=BROWSER_UA)
    outbox_drain()
    assert drops(site)["bot_user_agent"] == 2
    assert Event.objects.count() == 1
    assert_conserved(site)


def test_too_many_events_per_second_is_a_bot(consented_api, site, settings):
    settings.RECSITE = {"BOT_MAX_EVENTS_PER_SECOND": 10}
    ts = at(5)
    burst = [make_event(ts=ts, items=None) for _ in range(11)]
    calm = [make_event(ts=at(60 - i), items=None) for i in range(10)]
    consented_api.consent("a_other")
    for event in calm:
        event["anon_id"] = "a_other"
    consented_api.collect(burst + calm)
    outbox_drain()
    assert drops(site)["bot_rate"] == 11
    assert Event.objects.count() == 10
    assert_conserved(site)


def test_rate_counts_events_already_stored(consented_api, site, settings):
    settings.RECSITE = {"BOT_MAX_EVENTS_PER_SECOND": 10}
    ts = at(5)
    consented_api.collect([make_event(ts=ts, items=None) for _ in range(6)])
    outbox_drain()
    consented_api.collect([make_event(ts=ts, items=None) for _ in range(6)])
    outbox_drain()
    assert drops(site)["bot_rate"] == 6


def test_sessions_split_after_30_minutes_of_inactivity(consented_api, site):
    times = [at(7200), at(7000), at(3000), at(2990)]  # 2 h ago, +200 s, then +67 min, +10 s
    consented_api.collect([make_event(ts=t, items=None) for t in times])
    outbox_drain()
    sessions = list(Event.objects.order_by("ts").values_list("session", flat=True))
    assert sessions[0] == sessions[1] != sessions[2] == sessions[3]


def test_sessions_continue_across_batches(consented_api, site):
    consented_api.collect([make_event(ts=at(600), items=None)])
    outbox_drain()
    consented_api.collect([make_event(ts=at(60), items=None)])
    outbox_drain()
    assert Event.objects.values("session").distinct().count() == 1


def test_single_short_engagement_session_is_noise(consented_api, site):
    consented_api.consent("a_busy")
    short = make_event(name="user_engagement", items=None, params={"engaged_ms": 800})
    long = make_event(name="user_engagement", items=None, params={"engaged_ms": 2000},
                      anon_id="a_busy", ts=at(4000))
    busy = [make_event(name="page_view", items=None, anon_id="a_busy", ts=at(100)),
            make_event(name="user_engagement", items=None, params={"engaged_ms": 500},
                       anon_id="a_busy", ts=at(90))]
    consented_api.collect([short, long, *busy])
    outbox_drain()
    assert drops(site)["noise"] == 1
    assert not Event.objects.filter(event_id=short["event_id"]).exists()
    assert Event.objects.count() == 3
    assert_conserved(site)


def test_processing_twice_stores_nothing_twice(consented_api, site):
    consented_api.collect([make_event(), make_event()])
    outbox_drain()
    assert outbox_drain().batches == 0  # nothing pending: a second run is a no-op
    batch = RawBatch.objects.get()
    batch.processed_at = None  # as if the first run's acknowledgement were lost
    batch.save()
    result = outbox_drain()
    assert result.batches == 1 and result.outcomes["duplicate"] == 2
    assert Event.objects.count() == 2
    assert_conserved(site)


def test_concurrent_insert_of_the_same_event_counts_a_duplicate(consented_api, site):
    event = make_event(items=None)
    consented_api.collect([event])
    batch = RawBatch.objects.get()
    # Another worker stored the event between our duplicate check and our insert.
    original = pipeline.mark_duplicates
    try:
        pipeline.mark_duplicates = lambda candidates, stored: None
        Event.objects.create(site=site, event_id=uuid.UUID(event["event_id"]), subject="x",
                             session="s", name="page_view", ts=datetime.now(UTC),
                             source="browser")
        raw_batches_process(batches=[batch])
    finally:
        pipeline.mark_duplicates = original
    assert dict(DailyCount.objects.values_list("outcome", "count"))["duplicate"] == 1


def test_conservation_over_a_messy_run(consented_api, site, settings):
    settings.RECSITE = {"BOT_MAX_EVENTS_PER_SECOND": 5}
    consented_api.consent("a_b")
    consented_api.consent("a_c")
    repeat = make_event()
    ts = at(30)
    batches = [
        [make_event(), repeat, repeat, make_event(name="BAD")],
        [make_event(anon_id="a_b", ts=ts, items=None) for _ in range(6)],
        [make_event(name="user_engagement", items=None, params={"engaged_ms": 10},
                    anon_id="a_c", ts=at(20000))],
        [repeat, make_event(items=[{"item_id": str(i)} for i in range(5)])],
        [make_event(anon_id="a_nobody")],
    ]
    for events in batches:
        consented_api.collect(events)
    consented_api.collect([make_event()], HTTP_USER_AGENT=BOT_UA)
    outbox_drain()
    totals = outcome_totals(site=site)
    assert totals["accepted"] == 13  # the no-consent batch was refused whole (403)
    assert totals["duplicate"] == 2 and totals["bot_rate"] == 6 and totals["noise"] == 1
    assert totals["bot_user_agent"] == 1 and totals["rejected_invalid"] == 1
    assert_conserved(site)


@pytest.mark.parametrize("vendor", ["postgresql"])
def test_drain_query_count_does_not_grow_with_events(consented_api, site, vendor,
                                              django_assert_max_num_queries):
    if connection.vendor != vendor:
        pytest.fail("this suite runs on PostgreSQL: use scripts/test")
    site.require_consent = False
    site.save()
    consented_api.collect([make_event(anon_id=f"a_{n}", items=[{"item_id": str(i)}
                                                              for i in range(3)])
                           for n in range(200)])
    # 200 events of 3 items (600 rows): ORM queries stay a handful (select batches, mark
    # done, counts, the final empty select, savepoints). The stored-id lookup, prior events
    # and the one Event INSERT run on psycopg's own cursor and are not counted here.
    with django_assert_max_num_queries(11):
        assert outbox_drain().stored == 200


def test_retention_purge_keeps_recent_events(consented_api, site):
    site.retention_days = 10
    site.save()
    consented_api.collect([make_event(ts=at(3600), items=None)])
    outbox_drain()
    Event.objects.create(site=site, event_id=uuid.uuid4(), subject="old", session="s",
                         name="page_view", ts=datetime.now(UTC) - timedelta(days=11),
                         source="import")
    assert site_retention_purge(site=site).events == 1
    assert Event.objects.count() == 1 and Event.objects.get().subject != "old"
