"""The fast path for plainly valid batches: typed decoding in C, then the few rules left.

Validating a batch of 20 events value by value in Python (``tracking.validation``)
costs about as much CPU as the rest of a collect request's own work. Nearly every
batch a tracker sends is valid and plain: flat objects of short strings and numbers.
For those, msgspec decodes the body straight into the types below, checking every
type, size and string length on the way, and ``event_clean`` applies what a type
cannot say (patterns, ranges, times, reserved keys) to the decoded fields.

Nothing here decides anything alone:

- a body the types do not fit (an unknown field, a nested free value, an escape such
  as ``\\u0000``, a wrong type anywhere) is not ours: ``batch_decode`` answers None
  and the general parser and validator take the whole body, so every error is
  reported exactly as before;
- an event that fits the types but breaks a rule goes back, alone, to
  ``validation.clean_event``, rebuilt as the JSON it came from, which rejects it
  with its usual field and detail.

So the fast path can only accept what the general validator accepts, and gives the
same stored form; ``tests/tracking/test_wire.py`` checks both on generated batches.
"""

import re
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from tracking.validation import (
    MAX_AMOUNT,
    MAX_CONTEXT,
    MAX_ENGAGED_MS,
    MAX_ID,
    MAX_ITEM_KEYS,
    MAX_ITEMS,
    MAX_PARAMS,
    MAX_QUANTITY,
    MAX_TEXT,
    MAX_URL,
    NAME_RE,
    STORED_IN_CONTEXT,
    UUID_RE,
    Invalid,
    TimeWindow,
    _aware_time,
    _valid_keys,
    clean_event,
    clean_user_id,
)

# A free-form value the fast path takes: a scalar within the validator's limits (a
# finite float; a signed 64-bit integer: the general parser reads a larger one as a float).
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
Scalar = Text | Int64 | float | bool | None
Id = Annotated[str, Meta(max_length=MAX_ID)] | Int64
UserId = Annotated[str, Meta(max_length=MAX_ID)] | Int64 | float | bool | None
Url = Annotated[str, Meta(max_length=MAX_URL)]


def _free_object(max_keys: int) -> Any:
    return Annotated[dict[str, Scalar], Meta(max_length=max_keys)]


class WirePage(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    url: Url | None = None
    referrer: Url | None = None
    title: Text | None = None
    path: Url | None = None


class WireEvent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One event as the wire format has it (ARCHITECTURE.md), with flat free values."""

    event_id: Annotated[str, Meta(max_length=40)]
    name: Annotated[str, Meta(max_length=40)]
    ts: Annotated[str, Meta(max_length=40)] | float | Int64
    anon_id: Id | None = None
    user_id: UserId = None
    session_id: Id | None = None
    page: WirePage | None = None
    context: _free_object(MAX_CONTEXT) | None = None
    items: Annotated[list[_free_object(MAX_ITEM_KEYS)], Meta(max_length=MAX_ITEMS)] | None = None
    params: _free_object(MAX_PARAMS) | None = None


class WireBatch(msgspec.Struct, forbid_unknown_fields=True):
    """A batch whose every event has the wire types; its rules are checked per event."""

    events: list[WireEvent]
    site: Annotated[str, Meta(max_length=64)] | None = None
    sent_at: Annotated[str, Meta(max_length=40)] | float | Int64 | None = None


# The deepest nesting the types allow: batch, events, event, items, item.
WIRE_DEPTH = 5

_decoder = msgspec.json.Decoder(WireBatch)


def batch_decode(body: bytes, *, max_events: int, max_depth: int) -> WireBatch | None:
    """The batch in ``body`` if it fits the wire types, else None (the general path's).

    A body with any ``\\u`` escape is left to the general parser, which replaces the
    NUL and lone surrogates PostgreSQL cannot store: trackers escape nothing else
    that way (JSON.stringify writes other characters as UTF-8).
    """
    if b"\\u" in body or max_depth < WIRE_DEPTH:
        return None
    try:
        batch = _decoder.decode(body)
    except msgspec.DecodeError:  # ValidationError included: not plainly valid
        return None
    if not 0 < len(batch.events) <= max_events:
        return None
    return batch


class _NotPlain(Exception):
    """An event the fast path does not vouch for: the general validator decides."""


def event_clean(event: WireEvent, window: TimeWindow, offset: Any) -> dict[str, Any]:
    """``validation.clean_event`` of this event, computed from its decoded fields."""
    try:
        return _plain_event_clean(event, window, offset)
    except (_NotPlain, Invalid, OverflowError):
        return clean_event(msgspec.to_builtins(event), window, offset)


def _plain_event_clean(event: WireEvent, window: TimeWindow, offset: Any) -> dict[str, Any]:
    if not UUID_RE.fullmatch(event.event_id) or not NAME_RE.fullmatch(event.name):
        raise _NotPlain
    ts = _aware_time(event.ts, "ts") + offset
    if (window.latest is not None and ts > window.latest) \
            or (window.earliest is not None and ts < window.earliest):
        raise _NotPlain
    anon_id = _plain_id(event.anon_id, MAX_ID)
    user_id = clean_user_id(event.user_id, "user_id")  # cheap, and never raises here
    if anon_id is None and user_id is None:
        raise _NotPlain
    context = _plain_keys(event.context)
    if not context.keys().isdisjoint(STORED_IN_CONTEXT):
        raise _NotPlain
    if window.latest is not None and ts > window.received_at:
        ts = window.received_at
    return {
        "event_id": event.event_id.lower(),
        "name": event.name,
        "ts": ts.timestamp(),
        "anon_id": anon_id,
        "user_id": user_id,
        "session_id": _plain_id(event.session_id, 100),
        "page": None if event.page is None else msgspec.to_builtins(event.page),
        "context": context,
        "items": [] if event.items is None else [_plain_item(item) for item in event.items],
        "params": _plain_params(_plain_keys(event.params)),
    }


def _plain_id(value: Any, max_len: int) -> str | None:
    """An id (a non-empty string, or an integer) as text; None for no id."""
    if value is None:
        return None
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is not str or len(value) > max_len or not value.strip():
        raise _NotPlain
    return value


def _plain_keys(value: dict[str, Any] | None) -> dict[str, Any]:
    """A free object whose keys are all known valid (the general validator learns them)."""
    if value is None:
        return {}
    if not value.keys() <= _valid_keys:
        raise _NotPlain
    return value


def _plain_item(item: dict[str, Any]) -> dict[str, Any]:
    item = _plain_keys(item)
    item_id = _plain_id(item.get("item_id"), 100)
    if item_id is None:
        raise _NotPlain
    price, quantity = item.get("price"), item.get("quantity")
    if price is not None and not (type(price) in _NUMBER and -MAX_AMOUNT <= price <= MAX_AMOUNT):
        raise _NotPlain
    if quantity is not None and not (type(quantity) is int
                                     and -MAX_QUANTITY <= quantity <= MAX_QUANTITY):
        raise _NotPlain
    if type(item["item_id"]) is not str:
        item = {**item, "item_id": item_id}
    return item


_NUMBER = (int, float)
_SPECIAL_PARAMS = frozenset({"engaged_ms", "scroll_pct", "rec_token", "value", "currency"})
_CURRENCY_RE = re.compile(r"[A-Z]{3}")


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    """The params as ``validation.clean_params_special`` would leave them unchanged."""
    if params.keys().isdisjoint(_SPECIAL_PARAMS):
        return params
    engaged_ms, scroll_pct = params.get("engaged_ms"), params.get("scroll_pct")
    value, currency = params.get("value"), params.get("currency")
    rec_token = params.get("rec_token")
    if (engaged_ms is not None and not (type(engaged_ms) is int
                                        and 0 <= engaged_ms <= MAX_ENGAGED_MS)) \
            or (scroll_pct is not None and not (type(scroll_pct) is int
                                                and 0 <= scroll_pct <= 100)) \
            or (value is not None and not (type(value) in _NUMBER
                                           and -MAX_AMOUNT <= value <= MAX_AMOUNT)) \
            or (currency is not None and not (type(currency) is str
                                              and _CURRENCY_RE.fullmatch(currency))) \
            or (rec_token is not None and type(rec_token) is not str):
        raise _NotPlain
    return params
