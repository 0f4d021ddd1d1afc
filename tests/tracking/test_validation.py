"""Unit tests of the pure wire-format validation."""

import json
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.conftest import make_event
from tracking.validation import (
    Invalid,
    TimeWindow,
    clean_event,
    clean_user_id,
    clock_offset,
    json_depth_exceeds,
    parse_timestamp,
)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_now() -> None:
    """NOW as each test starts: make_event stamps events with the time it runs, which in a
    long suite is more than the 10 minutes of allowed clock lead after collection."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def window(sent_at=None, **kw) -> TimeWindow:
    defaults = dict(received_at=NOW, sent_at=sent_at, max_future=timedelta(minutes=10),
                    max_age=timedelta(days=30), max_skew=timedelta(days=7))
    return TimeWindow(**{**defaults, **kw})


def clean(event, win=None):
    win = win or window()
    return clean_event(event, win, clock_offset(win))


def reason_of(event, win=None) -> tuple[str, str]:
    with pytest.raises(Invalid) as info:
        clean(event, win)
    return info.value.field, info.value.detail


def test_valid_event_is_normalised_to_utc_epoch():
    win = window(max_future=None, max_age=None)
    event = clean(make_event(ts="2026-11-22T11:00:01.500+01:00"), win)
    assert event["ts"] == datetime(2026, 11, 22, 10, 0, 1, 500000, tzinfo=UTC).timestamp()
    assert event["items"][0]["item_id"] == "sku-1"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": 12}, "event_id"),
        ({"name": "View Item"}, "name"),
        ({"name": "a" * 41}, "name"),
        ({"name": 3}, "name"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "2026-11-22T10:00:00"}, "ts"),
        ({"items": {"item_id": "1"}}, "items"),
        ({"items": [{"price": 3}]}, "items[0].item_id"),
        ({"items": [{"item_id": "1", "price": "3"}]}, "items[0].price"),
        ({"items": [{"item_id": "1", "quantity": 1.5}]}, "items[0].quantity"),
        ({"params": {"engaged_ms": -1}}, "params.engaged_ms"),
        ({"params": {"scroll_pct": 101}}, "params.scroll_pct"),
        ({"params": {"currency": "euro"}}, "params.currency"),
        ({"params": {"note": "a\x00b"}}, "params.note"),
        ({"params": {"deep": {"a": {"b": {"c": 1}}}}}, "params.deep.a.b"),
        ({"params": {"bad key!": 1}}, "params.bad key!"),
        ({"page": {"url": 5}}, "page.url"),
        ({"context": "mobile"}, "context"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_fields_are_named(override, field):
    assert reason_of(make_event(**override))[0] == field


@pytest.mark.parametrize("missing", ["event_id", "name", "ts"])
def test_required_fields(missing):
    assert reason_of(make_event(**{missing: None})) == (missing, "is required")


def test_an_identity_is_required_and_junk_user_ids_do_not_count():
    assert reason_of(make_event(anon_id=None, user_id="undefined"))[0] == "anon_id"
    assert clean(make_event(anon_id=None, user_id=42))["user_id"] == "42"


@pytest.mark.parametrize("junk", ["null", "undefined", "0", "anonymous", "guest",
                                  "[object Object]", "NaN", "true", "false", "", "  ", False])
def test_junk_user_ids_never_identify(junk):
    assert clean_user_id(junk, "user_id") is None


def test_clock_skew_is_corrected_from_sent_at():
    # The client clock runs 1 hour slow: its ts and sent_at are both an hour behind.
    slow = NOW - timedelta(hours=1)
    win = window(sent_at=slow - timedelta(seconds=1))
    event = clean(make_event(ts=(slow - timedelta(seconds=3)).isoformat()), win)
    assert event["ts"] == pytest.approx((NOW - timedelta(seconds=2)).timestamp())


def test_clock_skew_correction_is_bounded():
    win = window(sent_at=NOW - timedelta(days=365))
    assert clock_offset(win) == timedelta(days=7)


def test_future_bound_at_limit_and_over():
    ok = clean(make_event(ts=(NOW + timedelta(minutes=9, seconds=59)).isoformat()))
    # Accepted, and clamped to the receive time: an event cannot happen after it arrived.
    assert ok["ts"] == NOW.timestamp()
    field, detail = reason_of(make_event(ts=(NOW + timedelta(minutes=10, seconds=1)).isoformat()))
    assert field == "ts" and "future" in detail


def test_age_bound_at_limit_and_over():
    clean(make_event(ts=(NOW - timedelta(days=29, hours=23)).isoformat()))
    field, detail = reason_of(make_event(ts=(NOW - timedelta(days=30, seconds=1)).isoformat()))
    assert field == "ts" and "older" in detail


def test_historical_window_has_no_bounds():
    win = window(max_future=None, max_age=None)
    event = clean(make_event(ts="2010-12-01T08:26:00Z"), win)
    assert event["ts"] == datetime(2010, 12, 1, 8, 26, tzinfo=UTC).timestamp()


def test_epoch_milliseconds_are_accepted():
    assert parse_timestamp(1_700_000_000_000, "ts") == datetime.fromtimestamp(1_700_000_000,
                                                                              tz=UTC)


def _depth(value) -> int:
    """The reference: nesting depth by walking the parsed value."""
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def test_depth_check_needs_no_recursion():
    body = b"[" * 100_000 + b"]" * 100_000
    assert json_depth_exceeds(body, 10)
    assert not json_depth_exceeds(orjson.dumps({"a": [{"b": 1}]}), 3)
    assert json_depth_exceeds(orjson.dumps({"a": [{"b": {}}]}), 3)


def test_brackets_and_escapes_in_strings_are_not_structure():
    assert not json_depth_exceeds(orjson.dumps({"a": "[[[[{{{{", "b": "]]]}}}}"}), 1)
    for value in ({"a": "\\"}, {"a": '"[[[', "b\\": "}}"}, {"a": "x\\", "b": "[\\\"]"}):
        body = orjson.dumps(value)
        assert orjson.loads(body) == value and b"\\" in body
        assert not json_depth_exceeds(body, 1), body
    assert json_depth_exceeds(orjson.dumps({"a": "x\\", "b": [[]]}), 2)


def test_depth_check_agrees_with_walking_the_parsed_value():
    rng = random.Random(42)
    strings = ["", "a[b", "]]", '"q"', "\\", "{", '\\"[', "é]", "\u2028"]

    def value(depth: int):
        roll = rng.random()
        if depth == 0 or roll < 0.3:
            return rng.choice([*strings, 1, 2.5, None, True])
        if roll < 0.65:
            return [value(depth - 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(strings) + str(i): value(depth - 1) for i in range(rng.randint(0, 3))}

    for _ in range(3000):
        parsed = value(rng.randint(0, 8))
        for body in (orjson.dumps(parsed), json.dumps(parsed, ensure_ascii=False).encode()):
            for limit in range(0, 9):
                assert json_depth_exceeds(body, limit) == (_depth(parsed) > limit), body
