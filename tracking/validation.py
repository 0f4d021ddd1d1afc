"""Validation of the wire format: one envelope, each event on its own.

Pure functions, no ORM: they take parsed JSON and return clean values or say
precisely what is wrong and where. The collect view rejects a bad envelope
whole (400) and a bad event alone (listed in the 202 answer by index).
"""

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

MAX_ID = 200
MAX_TEXT = 1024
MAX_URL = 2048
MAX_ITEMS = 200
MAX_PARAMS = 50
MAX_CONTEXT = 30
MAX_ITEM_KEYS = 30
MAX_LIST = 50
MAX_ENGAGED_MS = 24 * 3600 * 1000
MAX_AMOUNT = 1e12  # prices and values, either sign
MAX_QUANTITY = 1_000_000  # either sign

# user_id values that a buggy snippet sends for "nobody": never an identity.
JUNK_IDS = frozenset(
    {"", "null", "undefined", "none", "nil", "0", "anonymous", "guest", "[object object]",
     "nan", "true", "false", "-1"}
)


class Invalid(Exception):
    """A value is wrong: ``field`` says where (a dotted path), ``detail`` what."""

    def __init__(self, field: str, detail: str, reason: str = "invalid") -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    reason: str
    field: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "field": self.field,
                "detail": self.detail}


# --- scalars ----------------------------------------------------------------


def clean_text(value: Any, field: str, *, max_len: int = MAX_TEXT, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise Invalid(field, f"must be a string, not {json_type(value)}")
    if len(value) > max_len:
        raise Invalid(field, f"is {len(value)} characters long; the limit is {max_len}")
    if "\x00" in value:
        raise Invalid(field, "contains a NUL character (\\u0000)")
    if not allow_empty and not value.strip():
        raise Invalid(field, "must not be empty")
    return value


def clean_id(value: Any, field: str, *, max_len: int = MAX_ID) -> str:
    """An identifier: a non-empty string, or an integer (dataLayer ids often are)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return clean_text(value, field, max_len=max_len, allow_empty=False)


def clean_number(value: Any, field: str, *, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(field, f"must be a number, not {json_type(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Invalid(field, "must be a finite number")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise Invalid(field, f"must be between {minimum} and {maximum}, got {value}")
    return value


def clean_int(value: Any, field: str, *, minimum: int, maximum: int) -> int:
    number = clean_number(value, field, minimum=minimum, maximum=maximum)
    if isinstance(number, float):
        if not number.is_integer():
            raise Invalid(field, f"must be a whole number, got {number}")
        number = int(number)
    return number


def clean_uuid(value: Any, field: str) -> str:
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(field, "must be a UUID string, e.g. 4b0c3f9e-...")
    if UUID_RE.fullmatch(value):  # the canonical form: no need to build a UUID object
        return value.lower()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Invalid(field, f"is not a UUID: {value[:40]!r}") from None


def parse_timestamp(value: Any, field: str) -> datetime:
    """An ISO 8601 time with a zone (``Z`` or an offset), or epoch milliseconds, in UTC."""
    try:
        return _aware_time(value, field).astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, which is in year 0 in UTC
        raise Invalid(field, "lies outside the years 1 to 9999 in UTC") from None


def _aware_time(value: Any, field: str) -> datetime:
    """``parse_timestamp`` left in the zone it was given in (comparisons need no conversion)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value < 1e14:
            raise Invalid(field, "epoch milliseconds out of range")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid(field, "must be an ISO 8601 time such as 2026-11-22T10:00:01.900Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid(field, f"is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise Invalid(field, "needs a time zone, e.g. a trailing Z for UTC")
    return parsed


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def clean_free_value(value: Any, field: str, depth: int = 0) -> Any:
    """A free-form param: scalars, or small lists/objects of scalars (two levels at most)."""
    kind = type(value)
    if kind is str:
        if len(value) > MAX_TEXT or "\x00" in value:
            return clean_text(value, field)  # raises, saying which limit
        return value
    if value is None or kind is bool or kind is int:
        return value
    if kind is float:
        return clean_number(value, field)
    if depth >= 2:
        raise Invalid(field, "is nested too deeply (free-form values allow two levels)")
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise Invalid(field, f"has {len(value)} entries; the limit is {MAX_LIST}")
        return [clean_free_value(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return clean_free_object(value, field, max_keys=MAX_LIST, depth=depth + 1)
    raise Invalid(field, f"has an unsupported type {json_type(value)}")


# Keys seen valid before: most payloads repeat the same few dozen keys.
_valid_keys: set[str] = set()


def _key_is_valid(key: str) -> bool:
    if key in _valid_keys:
        return True
    if not KEY_RE.fullmatch(key):  # match() would let a trailing newline through
        return False
    if len(_valid_keys) < 10_000:
        _valid_keys.add(key)
    return True


def clean_free_object(value: Any, field: str, *, max_keys: int, depth: int = 0) -> dict:
    if not isinstance(value, dict):
        raise Invalid(field, f"must be an object, not {json_type(value)}")
    if len(value) > max_keys:
        raise Invalid(field, f"has {len(value)} keys; the limit is {max_keys}")
    clean: dict[str, Any] = {}
    for key, item in value.items():
        if key not in _valid_keys and not _key_is_valid(key):
            raise Invalid(f"{field}.{key[:64]}", "is not a valid key (letters, digits, _ . -)")
        kind = type(item)
        # The common cases inline; anything else goes through clean_free_value.
        if (kind is str and len(item) <= MAX_TEXT and "\x00" not in item) or item is None \
                or kind is int or kind is bool or (kind is float and math.isfinite(item)):
            clean[key] = item
        else:
            clean[key] = clean_free_value(item, f"{field}.{key}", depth)
    return clean


# --- the event --------------------------------------------------------------


def clean_user_id(value: Any, field: str) -> str | None:
    """The site's user id, or None for the junk values snippets send for 'nobody'."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()
                                         or abs(value) >= 2**53):  # no exact id past 2**53
            return None
        value = str(int(value))
    if isinstance(value, bool):
        return None
    user_id = clean_text(value, field, max_len=MAX_ID)
    return None if user_id.strip().lower() in JUNK_IDS else user_id


def clean_page(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("page", f"must be an object, not {json_type(value)}")
    page: dict[str, str] = {}
    for key, limit in (("url", MAX_URL), ("referrer", MAX_URL), ("title", MAX_TEXT),
                       ("path", MAX_URL)):
        if value.get(key) is not None:
            page[key] = clean_text(value[key], f"page.{key}", max_len=limit)
    unknown = set(value) - {"url", "referrer", "title", "path"}
    if unknown:
        raise Invalid(f"page.{sorted(unknown)[0][:64]}", "is not a page field (url, referrer, "
                      "title, path)")
    return page


def clean_item(value: Any, field: str, index: int) -> dict[str, Any]:
    """Entry ``index`` of the list ``field``; the path is spelled out only in an error."""
    try:
        if not isinstance(value, dict):
            raise Invalid("", f"must be an object, not {json_type(value)}")
        if "item_id" not in value:
            raise Invalid(".item_id", "is required")
        item = clean_free_object(value, "", max_keys=MAX_ITEM_KEYS, depth=1)
        item["item_id"] = clean_id(value["item_id"], ".item_id", max_len=100)
        if value.get("price") is not None:
            item["price"] = clean_number(value["price"], ".price", minimum=-MAX_AMOUNT,
                                         maximum=MAX_AMOUNT)
        if value.get("quantity") is not None:
            item["quantity"] = clean_int(value["quantity"], ".quantity",
                                         minimum=-MAX_QUANTITY, maximum=MAX_QUANTITY)
    except Invalid as error:
        raise Invalid(f"{field}[{index}]{error.field}", error.detail, error.reason) from None
    return item


def clean_params(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    params = clean_free_object(value, "params", max_keys=MAX_PARAMS)
    if params.get("engaged_ms") is not None:
        params["engaged_ms"] = clean_int(params["engaged_ms"], "params.engaged_ms",
                                         minimum=0, maximum=MAX_ENGAGED_MS)
    if params.get("scroll_pct") is not None:
        params["scroll_pct"] = clean_int(params["scroll_pct"], "params.scroll_pct",
                                         minimum=0, maximum=100)
    if params.get("rec_token") is not None:
        clean_text(params["rec_token"], "params.rec_token", max_len=MAX_TEXT)
    if params.get("value") is not None:
        params["value"] = clean_number(params["value"], "params.value", minimum=-MAX_AMOUNT,
                                       maximum=MAX_AMOUNT)
    if params.get("currency") is not None:
        currency = clean_text(params["currency"], "params.currency", max_len=3)
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise Invalid("params.currency", "must be a 3-letter ISO 4217 code such as EUR")
        params["currency"] = currency.upper()
    return params


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The acceptable range of skew-corrected event times, or None for no bound."""

    received_at: datetime
    sent_at: datetime | None
    max_future: timedelta | None
    max_age: timedelta | None
    max_skew: timedelta
    latest: datetime | None = field(init=False)  # the bounds, computed once per batch
    earliest: datetime | None = field(init=False)

    def __post_init__(self) -> None:
        latest = None if self.max_future is None else self.received_at + self.max_future
        earliest = None if self.max_age is None else self.received_at - self.max_age
        object.__setattr__(self, "latest", latest)
        object.__setattr__(self, "earliest", earliest)


def clock_offset(window: TimeWindow) -> timedelta:
    """The correction to add to client times: received_at - sent_at, bounded."""
    if window.sent_at is None:
        return timedelta(0)
    offset = window.received_at - window.sent_at
    return max(-window.max_skew, min(window.max_skew, offset))


# Keys the stored context gets from the event's other fields (tracking.processing).
STORED_IN_CONTEXT = frozenset({"page", "params", "item", "client_session"})
_EVENT_KEYS = frozenset({"event_id", "name", "ts", "anon_id", "user_id", "session_id", "page",
                         "context", "items", "params"})


def clean_event(value: Any, window: TimeWindow, offset: timedelta) -> dict[str, Any]:
    """A validated event in the stored form; raises Invalid naming the field."""
    if not isinstance(value, dict):
        raise Invalid("event", f"must be an object, not {json_type(value)}")
    if not value.keys() <= _EVENT_KEYS:
        raise Invalid(sorted(value.keys() - _EVENT_KEYS)[0][:64], "is not an event field; put "
                      "custom values in params")
    for required in ("event_id", "name", "ts"):
        if required not in value:
            raise Invalid(required, "is required")
    event_id = clean_uuid(value["event_id"], "event_id")
    name = value["name"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise Invalid("name", "must match ^[a-z][a-z0-9_]{0,39}$ (GA4 style, e.g. view_item)")
    try:
        ts = _aware_time(value["ts"], "ts") + offset
    except OverflowError:  # a time at the edge of year 1 or 9999, shifted past it
        raise Invalid("ts", "lies outside the years 1 to 9999 after clock-skew correction") \
            from None
    if window.latest is not None and ts > window.latest:
        raise Invalid("ts", f"lies {(ts - window.received_at)} in the future after clock-skew "
                      "correction")
    if window.earliest is not None and ts < window.earliest:
        raise Invalid("ts", f"is older than the {window.max_age.days}-day limit")
    anon_id = value.get("anon_id")
    if anon_id is not None:
        anon_id = clean_id(anon_id, "anon_id")
    user_id = clean_user_id(value.get("user_id"), "user_id")
    if anon_id is None and user_id is None:
        raise Invalid("anon_id", "is required unless a user_id is given")
    session_id = value.get("session_id")
    if session_id is not None:
        session_id = clean_id(session_id, "session_id", max_len=100)
    items_in = value.get("items")
    items: list[dict[str, Any]] = []
    if items_in is not None:
        if not isinstance(items_in, list):
            raise Invalid("items", f"must be an array, not {json_type(items_in)}")
        if len(items_in) > MAX_ITEMS:
            raise Invalid("items", f"has {len(items_in)} entries; the limit is {MAX_ITEMS}")
        items = [clean_item(item, "items", i) for i, item in enumerate(items_in)]
    context = value.get("context")
    context = {} if context is None else clean_free_object(context, "context",
                                                           max_keys=MAX_CONTEXT)
    if not context.keys().isdisjoint(STORED_IN_CONTEXT):
        raise Invalid(f"context.{min(context.keys() & STORED_IN_CONTEXT)}", "is reserved: the "
                      "stored context holds the event's page, params, item and client_session")
    if window.latest is not None and ts > window.received_at:
        ts = window.received_at
    return {
        "event_id": event_id,
        "name": name,
        # Stored as a float epoch: exact enough (microseconds) and cheap to read back.
        "ts": ts.timestamp(),
        "anon_id": anon_id,
        "user_id": user_id,
        "session_id": session_id,
        "page": clean_page(value.get("page")),
        "context": context,
        "items": items,
        "params": clean_params(value.get("params")),
    }


# Containers become ( and ); everything else but quotes goes.
_BRACKETS = bytes.maketrans(b"{[]}", b"(())")
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"{}[]')


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when the JSON text ``body`` nests containers deeper than ``limit``.

    ``body`` must be valid JSON (parse it first). Works on the bytes, at C
    speed: a third of the time of walking the parsed objects, which cost more
    than the parse itself. Escapes go, then everything but quotes and brackets;
    then every string (a bracket in one is not structure). What is left is the
    skeleton, ``{"a": [1, {"b": "x]"}], "c": {}}`` -> ``(()())``; each pass
    removes the innermost pairs, so the number of passes is the depth.
    """
    if b"\\" in body:
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = body.translate(_BRACKETS, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in skeleton:  # strings that held brackets (two strings may have merged: fine)
        skeleton = b"".join(skeleton.split(b'"')[0::2])
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"()", b"")
    return bool(skeleton)
