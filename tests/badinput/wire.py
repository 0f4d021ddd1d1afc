"""A model of the wire format for the property tests: hostile events, and what must be stored.

``events()`` draws events whose every string (ids, page fields, names of custom
values, values nested two levels deep) is full of NUL, lone surrogates, 4-byte
characters, right-to-left overrides, quotes, backslashes and control characters,
and whose strings run up to their length limits. Some events carry one deliberate
violation whose field the model knows (``Wire.expected_field``); the others must
be accepted.

The model states the documented sanitised form independently of the code under
test: NUL and lone surrogates read as U+FFFD (a high and a low surrogate side by
side form one character, as a JSON decoder reads them), everything else as sent;
``stored_rows`` is what the Event table must then hold.
"""

import functools
import json
import random
import re
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tracking.services import subject_hash

MAX_TEXT, MAX_URL, MAX_ID, MAX_ITEM_ID = 1024, 2048, 200, 100
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
RESERVED_PARAMS = frozenset({"engaged_ms", "scroll_pct", "rec_token", "value", "currency"})
RESERVED_CONTEXT = frozenset({"page", "params", "item", "client_session"})
ENGAGEMENT_ONLY = {"page_view", "user_engagement", "scroll"}

HOSTILE = ("\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\U0001f600", "\U00010348",
           "\u202e", "\u202d", "\u2066", "\u2069", "\u200f", "\u200b", "\ufeff", "\uffff",
           "\ufffd", '"', "\\", "\n", "\t", "\x1f", "\x7f", "<", "&", "'", "\u00e9")


def sanitised(text: str) -> str:
    """The documented reading of a string: NUL and lone surrogates become U+FFFD."""
    paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return paired.replace("\x00", "\ufffd")


def sanitised_json(value: Any) -> Any:
    if isinstance(value, str):
        return sanitised(value)
    if isinstance(value, list):
        return [sanitised_json(v) for v in value]
    if isinstance(value, dict):
        return {sanitised(k): sanitised_json(v) for k, v in value.items()}
    return value


def wire_bytes(payload: dict, *, raw_utf8: bool) -> bytes:
    """The JSON a browser sends: JSON.stringify escapes lone surrogates, keeps the rest
    (``raw_utf8``) or, like Python's default, escapes everything outside ASCII."""
    if not raw_utf8:
        return json.dumps(payload).encode()
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", "backslashreplace")


# --- strategies -------------------------------------------------------------

hostile_char = st.one_of(st.sampled_from(HOSTILE), st.characters())


def _hostile_string(seed: int, length: int) -> str:
    """``length`` characters: half from HOSTILE, the rest printable ASCII or any code point
    (lone surrogates included). Drawn from a seed: one draw for a whole string keeps 10,000
    payloads fast to generate."""
    rng = random.Random(seed)
    chars = []
    for _ in range(length):
        pick = rng.random()
        if pick < 0.5:
            chars.append(rng.choice(HOSTILE))
        elif pick < 0.8:
            chars.append(chr(rng.randrange(0x20, 0x7F)))
        else:
            chars.append(chr(rng.randrange(0x110000)))
    return "".join(chars)


@functools.cache
def hostile_text(max_size: int, *, prefix: str = "") -> st.SearchStrategy[str]:
    """Hostile strings up to ``max_size`` characters (prefix included): mostly short,
    sometimes up to the limit; a few drawn character by character (they shrink well)."""
    room = max_size - len(prefix)
    seeds = st.integers(0, 2**32)
    short = st.builds(_hostile_string, seeds, st.integers(0, min(room, 24)))
    long = st.builds(_hostile_string, seeds, st.integers(0, room))
    drawn = st.text(hostile_char, max_size=min(room, 4))
    return st.one_of(short, short, short, long, drawn).map(lambda text: prefix + text)


# Strategies are built once (functools.cache): building one per draw costs more than drawing.
@functools.cache
def valid_keys(reserved: frozenset[str] = frozenset()) -> st.SearchStrategy[str]:
    longest = st.builds(lambda c: "k" + c * 63, st.sampled_from("abcXYZ019_.-"))
    return st.one_of(st.from_regex(KEY_RE, fullmatch=True), longest).filter(
        lambda key: key not in reserved)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), hostile_text(MAX_TEXT))


@functools.cache
def free_values(levels: int) -> st.SearchStrategy[Any]:
    """Custom values with at most ``levels`` levels of lists or objects."""
    if levels == 0:
        return scalars
    inner = free_values(levels - 1)
    return st.one_of(scalars, scalars, st.lists(inner, max_size=4),
                     st.dictionaries(valid_keys(), inner, max_size=4))


@functools.cache
def free_objects(reserved: frozenset[str], levels: int = 2) -> st.SearchStrategy[dict]:
    return st.dictionaries(valid_keys(reserved), free_values(levels), max_size=4)


numbers = st.one_of(st.integers(-10**12, 10**12),
                    st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False))


@st.composite
def items(draw) -> dict:
    item = draw(free_objects(frozenset({"item_id", "price", "quantity"}), levels=1))
    item["item_id"] = draw(st.one_of(hostile_text(MAX_ITEM_ID, prefix="i"),
                                     st.integers(0, 10**15)))
    if draw(st.booleans()):
        item["price"] = draw(st.one_of(st.none(), numbers))
    if draw(st.booleans()):
        quantity = draw(st.integers(-10**6, 10**6))
        item["quantity"] = float(quantity) if draw(st.booleans()) else quantity
    return item


@st.composite
def params(draw, name: str) -> dict:
    out = draw(free_objects(RESERVED_PARAMS))
    if name in ENGAGEMENT_ONLY or draw(st.booleans()):
        # An engagement-only event under 2 s alone in its session is noise: not this one.
        low = 2000 if name in ENGAGEMENT_ONLY else 0
        out["engaged_ms"] = draw(st.integers(low, 24 * 3600 * 1000))
    if draw(st.booleans()):
        out["scroll_pct"] = draw(st.integers(0, 100))
    if draw(st.booleans()):
        out["rec_token"] = draw(hostile_text(MAX_TEXT))
    if draw(st.booleans()):
        out["value"] = draw(numbers)
    if draw(st.booleans()):
        out["currency"] = draw(st.text(string.ascii_letters, min_size=3, max_size=3))
    return out


@dataclass
class Wire:
    """One drawn event: what is sent, and the field of its violation (None: valid)."""

    event: dict[str, Any]
    seconds_ago: float
    as_epoch_ms: bool
    expected_field: str | None = None
    expected_reason: str = "invalid"
    notes: list[str] = field(default_factory=list)

    def sent(self, now: datetime) -> dict[str, Any]:
        """The event as sent at ``now``: its time is drawn relative to the request."""
        moment = now - timedelta(seconds=self.seconds_ago)
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        ts: Any = int(moment.timestamp() * 1000) if self.as_epoch_ms else \
            moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {**self.event, "ts": ts}


PAGE_LIMITS = {"url": MAX_URL, "referrer": MAX_URL, "title": MAX_TEXT, "path": MAX_URL}
HOSTILE_KEY_TAILS = st.text(st.sampled_from(HOSTILE), min_size=1, max_size=8)
NAMES = ("view_item", "add_to_cart", "purchase", "select_item", "search", "page_view",
         "scroll", "user_engagement", "custom_thing_2")
EVENT_NAMES = st.one_of(st.sampled_from(NAMES),
                        st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True))


@st.composite
def valid_events(draw) -> Wire:
    name = draw(EVENT_NAMES)
    event: dict[str, Any] = {"event_id": str(draw(st.uuids(version=4))), "name": name}
    anon = draw(st.one_of(st.none(), hostile_text(MAX_ID, prefix="a")))
    user = draw(st.one_of(st.none(), hostile_text(MAX_ID, prefix="u_")))
    if anon is None and user is None:
        anon = "a"
    if anon is not None:
        event["anon_id"] = anon
    if user is not None or draw(st.booleans()):
        event["user_id"] = user
    if draw(st.booleans()):
        event["session_id"] = draw(hostile_text(100, prefix="s"))
    if draw(st.booleans()):
        keys = draw(st.sets(st.sampled_from(sorted(PAGE_LIMITS))))
        event["page"] = {key: draw(st.one_of(st.none(), hostile_text(PAGE_LIMITS[key])))
                         for key in keys}
    if draw(st.booleans()):
        event["context"] = draw(free_objects(RESERVED_CONTEXT))
    if draw(st.booleans()):
        event["items"] = draw(st.lists(items(), max_size=3))
    if name in ENGAGEMENT_ONLY or draw(st.booleans()):
        event["params"] = draw(params(name))
    return Wire(event=event, seconds_ago=draw(st.floats(0, 600)),
                as_epoch_ms=draw(st.booleans()))


def _break(draw, wire: Wire) -> Wire:
    """Give the event one violation and note where the server must say it is."""
    event = wire.event
    kind = draw(st.sampled_from(["long_text", "long_id", "long_key", "hostile_key", "deep",
                                 "many_params", "name", "too_large"]))
    if kind == "long_text":
        event["page"] = {**event.get("page", {}), "title": "t" * (MAX_TEXT + 1)}
        wire.expected_field = "page.title"
    elif kind == "long_id":
        event["anon_id"] = "a" * (MAX_ID + 1)
        wire.expected_field = "anon_id"
    elif kind == "long_key":
        key = "k" * draw(st.integers(65, 2000))
        event["context"] = {**event.get("context", {}), key: 1}
        wire.expected_field = f"context.{key[:64]}"
    elif kind == "hostile_key":
        key = "k" + draw(HOSTILE_KEY_TAILS)
        event["context"] = {**event.get("context", {}), key: "v"}
        wire.expected_field = f"context.{sanitised(key)[:64]}"
    elif kind == "deep":
        event["params"] = {**event.get("params", {}), "deep": [[["x"]]]}
        wire.expected_field = "params.deep[0][0]"
    elif kind == "many_params":
        event["params"] = {f"p{i}": i for i in range(51)}
        wire.expected_field = "params"
    elif kind == "name":
        event["name"] = draw(st.sampled_from(["View Item", "view_item\n", "1st", "x" * 41,
                                              "view\u202eitem"]))
        wire.expected_field = "name"
    else:
        event["params"] = {f"pad{i}": "p" * MAX_TEXT for i in range(34)}
        event.pop("context", None)
        wire.expected_field, wire.expected_reason = "event", "too_large"
    wire.notes.append(kind)
    return wire


@st.composite
def events(draw) -> Wire:
    wire = draw(valid_events())
    if draw(st.integers(0, 3)) == 0:
        wire = _break(draw, wire)
    return wire


# --- what must be stored ----------------------------------------------------


def _int_if_whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) else value


def clean_form(sent: dict[str, Any], *, site, ts: float) -> dict[str, Any]:
    """The event as the collect view must store it in the raw batch (sizes are counted on
    this form): strings sanitised, ids replaced by subject hashes."""
    event = sanitised_json(sent)
    anon, user = event.get("anon_id"), event.get("user_id")
    items = []
    for item in event.get("items") or []:
        item = dict(item)
        item["item_id"] = str(item["item_id"])
        if item.get("quantity") is not None:
            item["quantity"] = _int_if_whole(item["quantity"])
        items.append(item)
    params = dict(event.get("params") or {})
    for key in ("engaged_ms", "scroll_pct"):
        if params.get(key) is not None:
            params[key] = _int_if_whole(params[key])
    if params.get("currency") is not None:
        params["currency"] = params["currency"].upper()
    page = event.get("page")
    user_subject = None if user is None else subject_hash(site=site, kind="u", raw_id=user)
    return {
        "event_id": str(uuid.UUID(event["event_id"])), "name": event["name"], "ts": ts,
        "session_id": event.get("session_id"),
        "page": None if page is None else {k: v for k, v in page.items() if v is not None},
        "context": event.get("context") or {}, "items": items, "params": params,
        "subject": subject_hash(site=site, kind="a", raw_id=anon) if anon is not None
        else user_subject,
        "user_subject": user_subject,
    }


def stored_rows(clean: dict[str, Any]) -> list[dict[str, Any]]:
    """The Event rows of an accepted event, as the README's wire-format section states."""
    params = dict(clean["params"])
    columns = {
        "engaged_ms": params.pop("engaged_ms", None),
        "scroll_pct": params.pop("scroll_pct", None),
        "rec_token": params.pop("rec_token", None) or "",
        "currency": params.pop("currency", None) or "",
    }
    event_value = params.pop("value", None)
    context = dict(clean["context"])
    if clean["page"]:
        context["page"] = clean["page"]
    if clean["session_id"]:
        context["client_session"] = clean["session_id"]
    if params:
        context["params"] = params
    base = {"event_id": clean["event_id"], "name": clean["name"], "subject": clean["subject"],
            "user_subject": clean["user_subject"],
            "ts": datetime.fromtimestamp(clean["ts"], tz=UTC), **columns}
    items = clean["items"]
    if not items:
        return [{**base, "item_index": 0, "item_id": "", "quantity": None,
                 "value": None if event_value is None else float(event_value),
                 "context": context}]
    rows = []
    for index, item in enumerate(items):
        quantity, price = item.get("quantity"), item.get("price")
        if len(items) == 1 and event_value is not None:
            value = float(event_value)
        elif price is not None:
            value = float(price * (quantity if quantity is not None else 1))
        else:
            value = None
        extra = {k: v for k, v in item.items() if k not in ("item_id", "quantity")}
        rows.append({**base, "item_index": index, "item_id": item["item_id"],
                     "quantity": quantity, "value": value,
                     "context": {**context, "item": extra} if extra else context})
    return rows


def same_json(stored: Any, expected: Any) -> bool:
    """Equal as JSON values. PostgreSQL keeps a number's decimal value, not its type: a
    float like 1e300 reads back as the integer it denotes, so numbers compare as floats."""
    if isinstance(expected, bool) or isinstance(stored, bool):
        return stored is expected
    if isinstance(expected, int | float) and isinstance(stored, int | float):
        return float(stored) == float(expected)
    if isinstance(expected, list) and isinstance(stored, list):
        return len(stored) == len(expected) and all(map(same_json, stored, expected))
    if isinstance(expected, dict) and isinstance(stored, dict):
        return stored.keys() == expected.keys() and all(
            same_json(stored[k], expected[k]) for k in expected)
    return type(stored) is type(expected) and stored == expected
