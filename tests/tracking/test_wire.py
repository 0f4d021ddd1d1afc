"""The fast path for plainly valid batches (tracking.wire) against the general validator.

The fast path may only take what the general path takes, and must give the same
stored form; whatever it does not vouch for goes to the general path, whose answer
(stored form, or field and detail of the rejection) is then the answer. The property
test draws events near every rule the fast path checks, as JSON bodies a tracker or a
server sends, and compares the two paths event by event.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_event
from tracking import wire
from tracking.validation import Invalid, TimeWindow, clean_event, clock_offset

DECODE = {"max_events": 500, "max_depth": 10}
WINDOW: TimeWindow
OFFSET: timedelta


@pytest.fixture(autouse=True)
def _window_now() -> None:
    """The acceptance window as each test starts (events are stamped when drawn, and in a
    long suite the module is imported many minutes before its tests run)."""
    global WINDOW, OFFSET
    now = datetime.now(UTC)
    WINDOW = TimeWindow(received_at=now, sent_at=now - timedelta(seconds=3),
                        max_future=timedelta(minutes=10), max_age=timedelta(days=30),
                        max_skew=timedelta(days=1))
    OFFSET = clock_offset(WINDOW)


def outcome(clean, event) -> tuple[str, Any]:
    try:
        return "stored", clean(event, WINDOW, OFFSET)
    except Invalid as error:
        return "rejected", (error.field, error.detail, error.reason)


def body_of(events: list[Any], **envelope: Any) -> bytes:
    """The JSON a browser sends (non-ASCII as UTF-8; integers of any size)."""
    return json.dumps({"site": "pk_test", "events": events, **envelope},
                      ensure_ascii=False).encode()


def decoded(events: list[Any], **envelope: Any) -> wire.WireBatch | None:
    return wire.batch_decode(body_of(events, **envelope), **DECODE)


# --- values near each rule ------------------------------------------------------

def iso(delta: timedelta) -> str:
    """Now plus ``delta``, as the tracker writes times."""
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def epoch_ms(delta: timedelta) -> int:
    return int((datetime.now(UTC) + delta).timestamp() * 1000)


def mostly(valid: st.SearchStrategy, *edges: st.SearchStrategy, odds: int = 10
           ) -> st.SearchStrategy:
    """``valid``, or once in ``odds`` draws one of the edges: most events pass every rule
    (a free object draws many keys and values, so theirs have longer odds)."""
    return st.integers(1, odds).flatmap(lambda roll: valid if roll > 1 else st.one_of(*edges))


text = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=12)
plain_key = st.sampled_from(["device", "viewport", "locale", "tz", "item_name", "list_id",
                             "coupon", "transaction_id", "x.y-z", "_k"])
key = mostly(plain_key, st.sampled_from(["9lives", "bad key", "", "page", "params", "item",
                                         "a" * 65]), odds=60)
scalar = mostly(st.one_of(text, st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none(),
                          st.floats(allow_nan=False, allow_infinity=False)),
                st.integers(2**63, 2**70), st.text(max_size=3).map(lambda s: s * 400),
                st.lists(text, max_size=2), st.dictionaries(plain_key, text, max_size=2),
                odds=60)
free = st.dictionaries(key, scalar, max_size=5)
ids = mostly(st.one_of(st.just("a_1"), text.filter(str.strip), st.integers(0, 10**12)),
             st.just("   "), st.just(""), st.booleans(), st.just("x" * 201), st.just(-5.5))
stamps = mostly(
    st.one_of(st.integers(-3600, 600).map(lambda s: iso(timedelta(seconds=s))),
              st.integers(-3600, 600).map(lambda s: epoch_ms(timedelta(seconds=s)))),
    st.sampled_from([iso(timedelta(days=-40)), iso(timedelta(hours=2)), "2026-11-22T10:00:00",
                     "yesterday", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+01:00",
                     1e15, -1, True, None]),
    st.floats(allow_nan=False, allow_infinity=False), odds=20)
event_ids = mostly(st.uuids().map(str),
                   st.uuids().map(lambda u: str(u).upper()), st.uuids().map(lambda u: u.hex),
                   st.uuids().map(lambda u: f"{{{u}}}"), st.just("not-a-uuid"), st.just(12),
                   odds=20)
names = mostly(st.sampled_from(["view_item", "add_to_cart", "purchase", "page_view"]),
               st.sampled_from(["View_Item", "9x", "a" * 41, "", "view item"]), odds=20)
prices = mostly(st.one_of(st.floats(0, 1e4), st.integers(0, 10**4)),
                st.floats(-2e12, 2e12), st.integers(-10, 10**13), st.just("9.99"),
                st.booleans(), st.none())
quantities = mostly(st.integers(1, 10), st.integers(-2_000_000, 2_000_000), st.just(2.0),
                    st.just(1.5), st.just("2"), st.none())
item = st.builds(
    lambda base, item_id, price, quantity, drop: {
        key: value for key, value in {**base, "item_id": item_id, "price": price,
                                      "quantity": quantity}.items() if key not in drop},
    free, ids, prices, quantities,
    mostly(st.just(set()), st.sets(st.sampled_from(["item_id", "price", "quantity"]),
                                   min_size=1, max_size=2)))
special_params = st.fixed_dictionaries({}, optional={
    "engaged_ms": mostly(st.integers(0, 10**6), st.integers(-5, 10**9), st.just(4000.0),
                         st.just("4000")),
    "scroll_pct": mostly(st.integers(0, 100), st.integers(-1, 101), st.just(50.5)),
    "value": prices,
    "currency": mostly(st.just("EUR"), st.sampled_from(["eur", "EURO", "E1R", 978, None])),
    "rec_token": mostly(text, st.integers(0, 5), st.none()),
})
params = st.builds(lambda base, special: {**base, **special}, free, special_params)
page = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "url": mostly(text, st.none(), st.just(7)), "referrer": text, "title": text,
    "path": text, "hash": mostly(st.nothing(), text)}))
events = st.fixed_dictionaries(
    {"event_id": event_ids, "name": names, "ts": stamps, "anon_id": mostly(ids, st.none())},
    optional={"user_id": mostly(st.none(), ids, st.sampled_from(["null", "Guest", 1.5, 2.0,
                                                                 2**60 + 0.0])),
              "session_id": ids, "page": page, "context": mostly(free, st.none()),
              "items": mostly(st.lists(item, max_size=3), st.none(), st.just("sku-1")),
              "params": mostly(params, st.none()), "extra": mostly(st.nothing(), text)})

@settings(max_examples=3000, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(event=events)
def test_the_fast_path_answers_as_the_general_validator(event, taken):
    body = body_of([event])
    batch = wire.batch_decode(body, **DECODE)
    if batch is None:
        taken["general"] += 1
        return
    parsed = orjson.loads(body)["events"][0]  # the event as the general parser gives it
    fast = outcome(wire.event_clean, batch.events[0])
    assert fast == outcome(clean_event, parsed)
    try:
        wire._plain_event_clean(batch.events[0], WINDOW, OFFSET)
        taken["plain"] += 1  # the fast path proper
    except Exception:
        taken[f"handed on, {fast[0]}"] += 1  # decided by the general validator


@pytest.fixture
def taken():
    counts = dict.fromkeys(["general", "plain", "handed on, stored", "handed on, rejected"], 0)
    yield counts
    # The draws reached every end: not decoded (the general path), decoded and taken by the
    # fast path, decoded and handed to the general validator (which stored or rejected it).
    assert min(counts.values()) >= 10, counts


# --- which bodies take the fast path ----------------------------------------------

def test_a_trackers_batch_takes_the_fast_path_and_is_stored_as_the_general_path_stores_it():
    events = [make_event(), make_event(name="add_to_cart", user_id="u-1",
                                       params={"value": 19.5, "currency": "EUR",
                                               "engaged_ms": 1200})]
    batch = decoded(events, sent_at=iso(timedelta(0)))
    assert batch is not None
    for typed, raw in zip(batch.events, events, strict=True):
        assert wire.event_clean(typed, WINDOW, OFFSET) == clean_event(raw, WINDOW, OFFSET)


@pytest.mark.parametrize("body", [
    pytest.param(b'{"site": "k", "events": [{"name": "a\\u0000"}]}', id="a \\u escape"),
    pytest.param(orjson.dumps({"site": "k", "events": [{**make_event(), "context": {
        "screen": {"w": 390}}}]}), id="a nested free value"),
    pytest.param(orjson.dumps({"site": "k", "events": [{**make_event(), "colour": "red"}]}),
                 id="an unknown event field"),
    pytest.param(orjson.dumps({"site": "k", "extra": 1, "events": [make_event()]}),
                 id="an unknown envelope field"),
    pytest.param(orjson.dumps({"site": "k", "events": []}), id="no events"),
    pytest.param(orjson.dumps({"site": "k", "events": [make_event()] * 501}),
                 id="over the event limit"),
    pytest.param(b'{"site": "k", "events": [{"event_id": 1' + b"0" * 25 + b"}]}",
                 id="an integer past 64 bits"),
    pytest.param(b'{"site": "k", "events": [1, 2', id="not JSON"),
    pytest.param(b'["site"]', id="not an object"),
])
def test_bodies_the_fast_path_leaves_to_the_general_parser(body):
    assert wire.batch_decode(body, **DECODE) is None


def test_a_low_depth_limit_turns_the_fast_path_off():
    body = orjson.dumps({"site": "k", "events": [make_event()]})
    assert wire.batch_decode(body, max_events=500, max_depth=wire.WIRE_DEPTH) is not None
    assert wire.batch_decode(body, max_events=500, max_depth=wire.WIRE_DEPTH - 1) is None


@pytest.mark.parametrize("override", [
    {"event_id": str(uuid.uuid4()).upper()}, {"event_id": uuid.uuid4().hex},
    {"event_id": f"{{{uuid.uuid4()}}}"}, {"anon_id": None, "user_id": "u-7"},
    {"items": [{"item_id": "sku-1", "quantity": 2.0}]}, {"items": [{"item_id": 17}]},
    {"params": {"engaged_ms": 4000.0, "currency": "eur", "value": 1}},
    {"user_id": "undefined"}, {"ts": epoch_ms(timedelta(seconds=-5))},
], ids=["upper-case uuid", "hex uuid", "uuid in braces", "user id alone",
        "whole float quantity", "integer item id", "params the validator rewrites",
        "junk user id", "epoch milliseconds"])
def test_valid_events_off_the_plain_path_are_stored_as_the_general_path_stores_them(override):
    event = make_event(**override)
    (typed,) = decoded([event]).events
    assert wire.event_clean(typed, WINDOW, OFFSET) == clean_event(event, WINDOW, OFFSET)


def test_an_event_with_a_new_key_goes_the_general_way_and_teaches_the_fast_path():
    key = f"k_{uuid.uuid4().hex}"
    batch = decoded([make_event(context={key: "v"})])
    with pytest.raises(wire._NotPlain):
        wire._plain_event_clean(batch.events[0], WINDOW, OFFSET)
    stored = wire.event_clean(batch.events[0], WINDOW, OFFSET)  # the general path learns it
    assert stored["context"] == {key: "v"}
    assert wire._plain_event_clean(batch.events[0], WINDOW, OFFSET) == stored
