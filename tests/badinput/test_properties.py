"""Property tests: hostile payloads through collect and the drain, and the laws of cleaning.

- 10,000 generated payloads (``tests/badinput/wire.py``): never a 5xx; each event is
  rejected exactly where the model says, or stored as its documented sanitised form.
- Processing a raw batch twice stores the same rows; dedupe keeps the same events
  whatever order duplicate batches arrive in; the skew correction stays in its bounds.
- The validators are idempotent: cleaning a clean event changes nothing.
"""

import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.badinput import wire
from tests.badinput.conftest import rolled_back
from tests.conftest import ORIGIN
from tracking.conf import tracking_settings
from tracking.models import Event, RawBatch
from tracking.processing import outbox_drain, raw_batches_process
from tracking.services import event_batch_ingest
from tracking.validation import (
    Invalid,
    TimeWindow,
    clean_event,
    clean_free_object,
    clean_params,
    clock_offset,
)

# The count; BADINPUT_PAYLOADS lowers it for a quick local run, never in CI.
PAYLOADS = int(os.environ.get("BADINPUT_PAYLOADS", 10_000))

SETTINGS = {"deadline": None, "database": None, "derandomize": True,
            "suppress_health_check": list(HealthCheck)}

ROW_FIELDS = ("event_id", "item_index", "name", "item_id", "subject", "user_subject", "ts",
              "value", "currency", "quantity", "engaged_ms", "scroll_pct", "rec_token",
              "context")


@pytest.fixture
def payload_counts(request) -> Iterator[Counter]:
    counts: Counter = Counter()
    yield counts
    assert counts["payloads"] >= PAYLOADS, dict(counts)
    # The model's outcomes all occurred: accepted, rejected where it said, too large.
    assert counts["stored"] and counts["invalid"] and counts["too_large"], dict(counts)
    print(f"\n{request.node.name}: {dict(counts)}")


def stored(site) -> list[dict]:
    rows = Event.objects.filter(site=site).order_by("event_id", "item_index").values(*ROW_FIELDS)
    return [{**row, "event_id": str(row["event_id"])} for row in rows]


def assert_rows_equal(rows: list[dict], expected: list[dict]) -> None:
    expected = sorted(expected, key=lambda row: (row["event_id"], row["item_index"]))
    assert len(rows) == len(expected), (rows, expected)
    for row, want in zip(rows, expected, strict=True):
        assert abs((row["ts"] - want["ts"]).total_seconds()) < 0.001, (row, want)
        for name in ROW_FIELDS:
            if name != "ts":
                assert wire.same_json(row[name], want[name]), (name, row[name], want[name])


def model_ts(sent_ts) -> float:
    if isinstance(sent_ts, int):
        return sent_ts / 1000
    return datetime.fromisoformat(sent_ts).timestamp()


def expected_outcome(wires, sent, site):
    """(rejections as (index, reason, field), clean forms of the accepted events)."""
    rejected, accepted = [], []
    for index, (drawn, event) in enumerate(zip(wires, sent, strict=True)):
        if drawn.expected_field is not None:
            rejected.append((index, drawn.expected_reason, drawn.expected_field))
            continue
        clean = wire.clean_form(event, site=site, ts=model_ts(event["ts"]))
        if len(orjson.dumps(clean)) > tracking_settings.MAX_EVENT_BYTES:
            rejected.append((index, "too_large", "event"))
        else:
            accepted.append(clean)
    return rejected, accepted


payloads = st.tuples(
    st.lists(wire.events(), min_size=1, max_size=3,
             unique_by=lambda drawn: drawn.event["event_id"]),
    st.booleans(),  # raw UTF-8, or everything outside ASCII escaped
    st.sampled_from(["application/json", "text/plain", "text/plain;charset=UTF-8"]))


def collect_one(site, payload, counts: Counter) -> list[dict]:
    """POST one payload; check its answer; the clean forms of the events it accepted."""
    wires, raw_utf8, content_type = payload
    sent = [drawn.sent(datetime.now(UTC)) for drawn in wires]
    body = wire.wire_bytes({"site": site.public_key, "events": sent}, raw_utf8=raw_utf8)
    response = Client().post("/api/v1/collect", body, content_type=content_type,
                             HTTP_ORIGIN=ORIGIN)
    counts["payloads"] += 1
    if len(body) > tracking_settings.MAX_BODY_BYTES:
        assert response.status_code == 413, response.content
        assert response.json()["error"] == "too_large"
        counts["body_too_large"] += 1
        return []
    assert response.status_code == 202, response.content
    rejected, accepted = expected_outcome(wires, sent, site)
    answer = response.json()
    assert [(r["index"], r["reason"], r["field"]) for r in answer["rejected"]] == rejected
    assert answer["accepted"] == len(accepted)
    counts["stored"] += len(accepted)
    counts.update(reason for _, reason, _ in rejected)
    return accepted


# Ten payloads per example, drained together: the drain and the read-back are the costly
# part, and each payload is still checked on its own (its answer; its rows).
@settings(max_examples=PAYLOADS // 10, **SETTINGS)
@given(chunk=st.lists(payloads, min_size=10, max_size=10))
def test_hostile_payloads_are_rejected_where_wrong_or_stored_sanitised(
        open_site, payload_counts, chunk):
    site = open_site.site
    with rolled_back():
        accepted = [clean for payload in chunk for clean in collect_one(site, payload,
                                                                        payload_counts)]
        outbox_drain()
        assert_rows_equal(stored(site), [row for clean in accepted
                                         for row in wire.stored_rows(clean)])


# --- processing: idempotence and dedupe ---------------------------------------

valid_batches = st.lists(
    st.lists(wire.valid_events(), min_size=1, max_size=4,
             unique_by=lambda drawn: drawn.event["event_id"]),
    min_size=1, max_size=4)


def ingest(site, events: list[dict]) -> set[str]:
    """Store a server batch of these events; the ids of those accepted."""
    result = event_batch_ingest(site=site, payload={"events": events},
                                received_at=timezone.now(), source=RawBatch.Source.SERVER)
    refused = {rejection.index for rejection in result.rejected}
    return {event["event_id"] for index, event in enumerate(events) if index not in refused}


def as_parsed(batches: list[list[wire.Wire]], now: datetime) -> list[list[dict]]:
    """The events as the parser hands them to the service: strings sanitised."""
    return [[wire.sanitised_json(drawn.sent(now)) for drawn in batch] for batch in batches]


@settings(max_examples=150, **SETTINGS)
@given(batches=valid_batches)
def test_processing_a_batch_twice_stores_the_same_rows(open_site, batches):
    site = open_site.site
    with rolled_back():
        for batch in as_parsed(batches, datetime.now(UTC)):
            ingest(site, batch)
        outbox_drain()
        rows = stored(site)
        # A redelivered message, a crash before the batches were marked: process them again.
        again = list(RawBatch.objects.filter(site=site))
        second = raw_batches_process(batches=again)
        assert stored(site) == rows
        assert second.stored == 0
        assert second.outcomes["duplicate"] == sum(batch.n_events for batch in again)


@settings(max_examples=100, **SETTINGS)
@given(batches=valid_batches, data=st.data())
def test_dedupe_keeps_the_same_events_in_any_order(open_site, batches, data):
    """Batches repeated (a retried send) arrive in any order, each drained on its own."""
    site = open_site.site
    sent = as_parsed(batches, datetime.now(UTC))
    repeats = data.draw(st.lists(st.sampled_from(range(len(sent))), max_size=4))
    arrivals = [*range(len(sent)), *repeats]
    orders = [arrivals, arrivals[::-1], data.draw(st.permutations(arrivals))]
    outcomes, accepted = [], set()
    for order in orders:
        with rolled_back():
            for index in order:
                accepted |= ingest(site, sent[index])
                outbox_drain()
            outcomes.append(stored(site))  # sessions may differ: they are not compared
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert {row["event_id"] for row in outcomes[0]} == accepted


# --- the skew correction ------------------------------------------------------

moments = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                       timezones=st.sampled_from([UTC]))
offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                        max_value=timedelta(hours=23, minutes=59)).map(
    lambda delta: timedelta(minutes=int(delta.total_seconds() // 60)))


def iso_in_zone(moment: datetime, zone_offset: timedelta) -> str:
    from datetime import timezone as tz

    try:
        return moment.astimezone(tz(zone_offset)).isoformat()
    except OverflowError:  # the local time falls outside years 1..9999: send it as UTC
        return moment.isoformat()


near_now = st.floats(-40 * 86400, 40 * 86400).map(lambda s: timedelta(seconds=s))


@settings(max_examples=2000, **SETTINGS)
@given(sent_shift=st.one_of(st.none(), near_now, moments),
       ts=st.one_of(near_now, moments, st.integers(-10, 10**14)), zone=offsets,
       data=st.data())
def test_skew_correction_stays_in_its_bounds(sent_shift, ts, zone, data):
    received = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    sent_at = received + sent_shift if isinstance(sent_shift, timedelta) else sent_shift
    window = TimeWindow(received_at=received, sent_at=sent_at,
                        max_future=tracking_settings.MAX_FUTURE,
                        max_age=tracking_settings.MAX_AGE,
                        max_skew=tracking_settings.MAX_CLOCK_SKEW)
    offset = clock_offset(window)
    assert abs(offset) <= tracking_settings.MAX_CLOCK_SKEW
    if sent_at is None:
        assert offset == timedelta(0)
    if isinstance(ts, timedelta):
        ts = received + ts
    wire_ts = ts if isinstance(ts, int) else iso_in_zone(ts, zone)
    event = {"event_id": "4b0c3f9e-7d7a-4c56-9b0e-2f1c3e5d6a7b", "name": "view_item",
             "ts": wire_ts, "anon_id": "a_1"}
    try:
        clean = clean_event(event, window, offset)
    except Invalid as error:
        assert error.field == "ts"
        return
    stored_at = datetime.fromtimestamp(clean["ts"], tz=UTC)
    assert received - tracking_settings.MAX_AGE - timedelta(milliseconds=1) <= stored_at
    assert stored_at <= received + timedelta(milliseconds=1)
    corrected = (datetime.fromtimestamp(ts / 1000, tz=UTC) if isinstance(ts, int) else ts) \
        + offset
    assert corrected <= received + tracking_settings.MAX_FUTURE
    assert abs((stored_at - min(corrected, received)).total_seconds()) < 0.001


# --- validators: cleaning a clean value changes nothing -----------------------


@settings(max_examples=500, **SETTINGS)
@given(drawn=wire.valid_events())
def test_cleaning_is_idempotent(drawn):
    received = datetime.now(UTC)
    window = TimeWindow(received_at=received, sent_at=None, max_future=timedelta(minutes=10),
                        max_age=timedelta(days=30), max_skew=timedelta(days=7))
    event = wire.sanitised_json(drawn.sent(received))  # as the parser hands it over
    once = clean_event(event, window, timedelta(0))
    again_wire = {**once, "ts": datetime.fromtimestamp(once["ts"], tz=UTC).isoformat()}
    assert clean_event(again_wire, window, timedelta(0)) == once
    assert clean_params(once["params"]) == once["params"]
    assert clean_free_object(once["context"], "context", max_keys=30) == once["context"]
