"""Every cap at limit-1 and at the limit (accepted) and at limit+1 (refused with the documented
status, reason and field); client clocks far off in both directions, and unparseable times.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.test import Client

from tests.badinput import wire
from tests.conftest import ORIGIN, iso
from tracking.conf import tracking_settings
from tracking.models import Event
from tracking.processing import outbox_drain


def event(**fields: Any) -> dict[str, Any]:
    """A small valid event; keyword arguments add or replace fields."""
    return {"event_id": str(uuid.uuid4()), "name": "view_item",
            "ts": iso(datetime.now(UTC) - timedelta(seconds=5)), "anon_id": "a_visitor1",
            **fields}


def post(keys, events: list[dict] | None = None, *, body: bytes | None = None,
         path: str = "/api/v1/collect", **envelope: Any):
    if body is None:
        body = json.dumps({"site": keys.site.public_key, "events": events, **envelope}).encode()
    return Client().post(path, body, content_type="application/json", HTTP_ORIGIN=ORIGIN)


def accepted(response) -> int:
    assert response.status_code == 202, response.content
    return response.json()["accepted"]


def rejection(response) -> tuple[str, str, str]:
    """The reason, field and detail of the one rejected event of a one-event batch."""
    assert response.status_code == 202, response.content
    data = response.json()
    assert data["accepted"] == 0 and len(data["rejected"]) == 1, data
    found = data["rejected"][0]
    return found["reason"], found["field"], found["detail"]


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["error"] == code and data["detail"], data
    return data


# --- the whole request --------------------------------------------------------


def padded(keys, size: int) -> bytes:
    body = json.dumps({"site": keys.site.public_key, "events": [event()]}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_body_size(open_site):
    limit = tracking_settings.MAX_BODY_BYTES
    for size in (limit - 1, limit):
        assert accepted(post(open_site, body=padded(open_site, size))) == 1
    refused(post(open_site, body=padded(open_site, limit + 1)), 413, "too_large")


def test_events_per_batch(open_site):
    limit = tracking_settings.MAX_EVENTS
    assert accepted(post(open_site, [event() for _ in range(limit - 1)])) == limit - 1
    assert accepted(post(open_site, [event() for _ in range(limit)])) == limit
    data = refused(post(open_site, [event() for _ in range(limit + 1)]), 413, "too_large")
    assert f"{limit + 1} events" in data["detail"]


def nested_body(keys, depth: int) -> bytes:
    """A batch whose deepest container is ``depth`` levels down (the envelope is level 1):
    envelope > events > event > params > lists."""
    value: Any = 1
    for _ in range(depth - 4):
        value = [value]
    return json.dumps({"site": keys.site.public_key,
                       "events": [event(params={"v": value})]}).encode()


def test_nesting_depth_of_the_body(open_site):
    limit = tracking_settings.MAX_DEPTH
    for depth in (limit - 1, limit):
        # Parsed; the event alone is refused, for its custom value's own depth limit.
        reason, field, _ = rejection(post(open_site, body=nested_body(open_site, depth)))
        assert (reason, field) == ("invalid", "params.v[0][0]")
    data = refused(post(open_site, body=nested_body(open_site, limit + 1)), 400, "malformed")
    assert f"deeper than {limit}" in data["detail"]


@pytest.mark.parametrize(("value", "field"), [
    ([["two levels"]], None), ({"a": {"b": "two levels"}}, None),
    ([[["three"]]], "params.v[0][0]"), ({"a": {"b": ["three"]}}, "params.v.a.b"),
])
def test_nesting_depth_of_a_custom_value(open_site, value, field):
    response = post(open_site, [event(params={"v": value})])
    if field is None:
        assert accepted(response) == 1
    else:
        assert rejection(response)[:2] == ("invalid", field)


def test_event_size(open_site):
    """The limit is on the event as stored (validated, ids hashed), measured by the model."""
    limit = tracking_settings.MAX_EVENT_BYTES
    base = event()
    ts = datetime.fromisoformat(base["ts"]).timestamp()

    def measure(sent: dict) -> int:
        return len(orjson.dumps(wire.clean_form(sent, site=open_site.site, ts=ts)))

    def of_size(size: int) -> dict:
        sent = {**base, "params": {"pad": ""}}
        while size - measure(sent) > 1000:
            sent["params"][f"p{len(sent['params'])}"] = "x" * 900
        sent["params"]["pad"] = "x" * (size - measure(sent))
        assert measure(sent) == size
        return sent

    assert accepted(post(open_site, [of_size(limit - 1)])) == 1
    assert accepted(post(open_site, [of_size(limit)])) == 1
    reason, field, detail = rejection(post(open_site, [of_size(limit + 1)]))
    assert (reason, field) == ("too_large", "event")
    assert detail.startswith(f"{limit + 1} bytes")


# --- counts and lengths inside an event -----------------------------------------

COUNT_CAPS = [  # (name, limit, build the event with n entries, the refused field)
    ("params", 50, lambda n: event(params={f"k{i}": i for i in range(n)}), "params"),
    ("context keys", 30, lambda n: event(context={f"k{i}": i for i in range(n)}), "context"),
    ("item keys", 30, lambda n: event(items=[{"item_id": "1", **{f"k{i}": i
                                                                for i in range(n - 1)}}]),
     "items[0]"),
    ("items", 200, lambda n: event(items=[{"item_id": str(i)} for i in range(n)]), "items"),
    ("list entries", 50, lambda n: event(params={"v": list(range(n))}), "params.v"),
    ("nested object keys", 50, lambda n: event(params={"v": {f"k{i}": i for i in range(n)}}),
     "params.v"),
]


@pytest.mark.parametrize(("name", "limit", "build", "field"), COUNT_CAPS,
                         ids=[cap[0] for cap in COUNT_CAPS])
def test_counts(open_site, name, limit, build, field):
    for n in (limit - 1, limit):
        assert accepted(post(open_site, [build(n)])) == 1, (name, n)
    reason, found, detail = rejection(post(open_site, [build(limit + 1)]))
    assert (reason, found) == ("invalid", field)
    assert str(limit + 1) in detail and str(limit) in detail


LENGTH_CAPS = [  # (field, limit, build the event with a string of n characters)
    ("page.title", 1024, lambda s: event(page={"title": s})),
    ("page.url", 2048, lambda s: event(page={"url": s})),
    ("page.referrer", 2048, lambda s: event(page={"referrer": s})),
    ("page.path", 2048, lambda s: event(page={"path": s})),
    ("anon_id", 200, lambda s: event(anon_id=s)),
    ("user_id", 200, lambda s: event(user_id=s)),
    ("session_id", 100, lambda s: event(session_id=s)),
    ("items[0].item_id", 100, lambda s: event(items=[{"item_id": s}])),
    ("items[0].item_name", 1024, lambda s: event(items=[{"item_id": "1", "item_name": s}])),
    ("params.note", 1024, lambda s: event(params={"note": s})),
    ("params.rec_token", 1024, lambda s: event(params={"rec_token": s})),
    ("params.v[0]", 1024, lambda s: event(params={"v": [s]})),
    ("context.locale", 1024, lambda s: event(context={"locale": s})),
]


@pytest.mark.parametrize(("field", "limit", "build"), LENGTH_CAPS,
                         ids=[cap[0] for cap in LENGTH_CAPS])
def test_string_lengths(open_site, field, limit, build):
    # 4-byte characters count as one: the limit is in characters, as the tracker cuts them.
    for n in (limit - 1, limit):
        assert accepted(post(open_site, [build("\U0001f600" * n)])) == 1, (field, n)
    reason, found, detail = rejection(post(open_site, [build("a" * (limit + 1))]))
    assert (reason, found) == ("invalid", field)
    assert f"is {limit + 1} characters long; the limit is {limit}" == detail


@pytest.mark.parametrize(("field", "limit", "build"), [
    ("name", 40, lambda n: event(name="v" * n)),
    ("context.", 64, lambda n: event(context={"k" * n: 1})),
    ("params.", 64, lambda n: event(params={"k" * n: 1})),
    ("items[0].", 64, lambda n: event(items=[{"item_id": "1", "k" * n: 1}])),
])
def test_name_and_key_lengths(open_site, field, limit, build):
    for n in (limit - 1, limit):
        assert accepted(post(open_site, [build(n)])) == 1, (field, n)
    reason, found, _ = rejection(post(open_site, [build(limit + 1)]))
    assert reason == "invalid"
    assert found == ("name" if field == "name" else field + "k" * 64)


def test_consent_string_lengths(open_site):
    def consent(**fields):
        body = {"site": open_site.site.public_key, "anon_id": "a_visitor1",
                "purposes": {"analytics": True}, **fields}
        return post(open_site, body=json.dumps(body).encode(), path="/api/v1/consent")

    for n in (63, 64):
        assert consent(banner_version="v" * n).status_code == 201
    assert refused(consent(banner_version="v" * 65), 400, "invalid")["field"] == \
        "banner_version"
    for n in (199, 200):
        assert consent(anon_id="a" * n).status_code == 201
    assert refused(consent(anon_id="a" * 201), 400, "invalid")["field"] == "anon_id"


# --- clocks ---------------------------------------------------------------------------


def at(delta: timedelta) -> str:
    return iso(datetime.now(UTC) + delta)


DAY = timedelta(days=1)
SKEW_CASES = [  # (case, sent_at, ts, the field named in the rejection)
    ("event 400 days old", at(timedelta(0)), at(-400 * DAY), "ts"),
    ("clock 400 days behind", at(-400 * DAY), at(-400 * DAY - timedelta(seconds=5)), "ts"),
    ("event 30 days ahead", at(timedelta(0)), at(30 * DAY), "ts"),
    ("clock 30 days ahead", at(30 * DAY), at(30 * DAY - timedelta(seconds=5)), "ts"),
    ("ts in 1970", at(timedelta(0)), "1970-01-01T00:00:00Z", "ts"),
    ("ts epoch 0", at(timedelta(0)), 0, "ts"),
    ("clock reset to 1970", "1970-01-01T00:00:07Z", "1970-01-01T00:00:02Z", "ts"),
    ("ts in 9999", at(timedelta(0)), "9999-12-31T23:59:59Z", "ts"),
    ("ts in 9999, clock behind", at(-DAY), "9999-12-31T23:59:59Z", "ts"),
    ("ts in year 1, clock ahead", at(DAY), "0001-01-01T00:00:00Z", "ts"),
    ("ts in year 1 east of UTC", at(timedelta(0)), "0001-01-01T00:30:00+01:00", "ts"),
    ("ts unparseable", at(timedelta(0)), "yesterday", "ts"),
    ("ts epoch ms past the range", at(timedelta(0)), 10**14, "ts"),
    ("ts a boolean", at(timedelta(0)), True, "ts"),
]


@pytest.mark.parametrize(("case", "sent_at", "ts", "field"), SKEW_CASES,
                         ids=[case[0] for case in SKEW_CASES])
def test_clock_cases_refused(open_site, case, sent_at, ts, field):
    reason, found, detail = rejection(post(open_site, [event(ts=ts)], sent_at=sent_at))
    assert (reason, found) == ("invalid", field), detail


@pytest.mark.parametrize("clock_off", [-3 * DAY, 3 * DAY, -6 * DAY])
def test_clock_off_within_the_bound_is_corrected(open_site, clock_off):
    sent = event(ts=at(clock_off - timedelta(seconds=5)))
    assert accepted(post(open_site, [sent], sent_at=at(clock_off))) == 1
    outbox_drain()
    age = datetime.now(UTC) - Event.objects.get().ts
    assert timedelta(seconds=4) < age < timedelta(seconds=30)


def test_clock_in_9999_is_corrected_by_the_bound_only(open_site):
    """A sent_at in 9999 pulls times back by the 7-day bound and no further."""
    assert accepted(post(open_site, [event(ts=at(timedelta(0)))],
                         sent_at="9999-12-31T23:59:59.999Z")) == 1
    outbox_drain()
    age = datetime.now(UTC) - Event.objects.get().ts
    bound = tracking_settings.MAX_CLOCK_SKEW
    assert bound <= age < bound + timedelta(seconds=30)


@pytest.mark.parametrize("sent_at", ["yesterday", "2026-11-22", 10**14, True, {"a": 1},
                                     "0001-01-01T00:00:00+01:00"])
def test_unusable_sent_at_refuses_the_batch(open_site, sent_at):
    data = refused(post(open_site, [event()], sent_at=sent_at), 400, "invalid")
    assert data["field"] == "sent_at"
