"""Query parameters of the recommendation endpoints, parsed into a RecRequest.

Every parameter is checked here with a precise message naming it; nothing a client sends
reaches serving unchecked. ``filter`` and ``boost`` are JSON (see recommend/query.py).
"""

import contextlib
import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest

from recommend.conf import recommend_settings
from recommend.query import QueryError, boosters_parse, filter_parse
from recommend.recommending import RecRequest
from recommend.tokens import token_read

PLACEMENT_RE = re.compile(r"^[-a-zA-Z0-9_]{1,40}$")
ANON_RE = re.compile(r"^[A-Za-z0-9_.:-]{16,200}$")
KNOWN = {"site", "anon_id", "user_id", "placement", "limit", "item", "filter", "boost",
         "diversity", "rotation", "rotation_hours", "after", "device", "country", "hour",
         "personalized"}
# Parameters that change the answer (and so the cache field); site and anon_id name who.
ANSWER_KEYS = ("placement", "limit", "item", "filter", "boost", "diversity", "rotation",
               "rotation_hours", "device", "country", "hour", "personalized")


class ParamInvalid(ValueError):
    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def rec_request_parse(query: Mapping[str, str], *, placement: str | None = None,
                      item: str | None = None, similar: bool = False) -> RecRequest:
    """A RecRequest from query parameters (ParamInvalid naming the first wrong one)."""
    unknown = sorted(set(query) - KNOWN)
    if unknown:
        raise ParamInvalid(unknown[0][:40], f"is not a parameter ({', '.join(sorted(KNOWN))})")
    name = placement or query.get("placement") or ("similar" if similar else "")
    if not PLACEMENT_RE.match(name):
        raise ParamInvalid("placement", "is required: letters, digits, - and _ (40 at most)")
    item_id = item if item is not None else query.get("item") or None  # "": unset, as elsewhere
    if item_id is not None and not 0 < len(item_id) <= 100:
        raise ParamInvalid("item", "must be an item id of 1 to 100 characters")
    after = None
    if query.get("after"):
        after = token_read(query["after"],
                           max_age_seconds=recommend_settings.REC_TOKEN_MAX_AGE_DAYS * 86400)
        if after is None:
            raise ParamInvalid("after", "is not a valid rec_token of ours (or it expired)")
        if after.placement != name:
            raise ParamInvalid("after", f"is a token of the placement {after.placement!r}")
    return RecRequest(
        placement=name, item=item_id, after=after, similar=similar,
        limit=_int(query, "limit", 1, recommend_settings.MAX_LIMIT),
        filter=_json(query, "filter", filter_parse),
        boosters=tuple(_json(query, "boost", boosters_parse) or ()),
        diversity=_float(query, "diversity", 0.0, 1.0),
        rotation_rate=_float(query, "rotation", 0.0, 1.0),
        rotation_hours=_float(query, "rotation_hours", 0.0, 24 * 90),
        device=_text(query, "device", r"[a-z]{1,20}"),
        country=_text(query, "country", r"[A-Za-z]{2}"),
        hour=_int(query, "hour", 0, 23))


def personalized_param(query: Mapping[str, str]) -> bool:
    """``personalized=0`` asks for lists that read nothing of the visitor."""
    value = query.get("personalized") or "1"  # "": unset, as elsewhere
    if value not in ("0", "1", "true", "false"):
        raise ParamInvalid("personalized", "must be 0 or 1")
    return value in ("1", "true")


def anon_id_param(query: Mapping[str, str], cookie: str | None) -> str:
    """The visitor's anon id: the ``anon_id`` parameter, else the tracker's rs_aid cookie
    (sent when the API is on the page's own origin)."""
    value = query.get("anon_id") or cookie
    if not value:
        raise ParamInvalid("anon_id", "is required: the visitor's id from the tracker "
                           "(recsite's rs_aid cookie)")
    if not ANON_RE.match(value):
        raise ParamInvalid("anon_id", "must be the tracker's random visitor id (16 to 200 "
                           "letters, digits, _ . : -): a short id could be guessed")
    return value


_ANSWER_KEYS = frozenset(ANSWER_KEYS)


def cache_field(query: Mapping[str, str], *, extra: str = "") -> str:
    """The cache field of an answer: a digest of the parameters that shape it (an empty
    one is unset, as everywhere), in a canonical order, with ``extra`` (the path's)."""
    given = sorted((key, value) for key, value in query.items()
                   if value and key in _ANSWER_KEYS)
    return hashlib.blake2b(orjson.dumps([extra, given]), digest_size=12).hexdigest()


def query_params(request: HttpRequest) -> dict[str, str]:
    """The request's query parameters, parsed as ``request.GET`` parses them (a repeated
    name: its last value, as ``request.GET.get`` gives), into a plain dict: a third of a
    QueryDict's cost, which keeps every value of a name for ``getlist`` (unused here), on
    paths where the whole view costs a few times that."""
    raw = request.META.get("QUERY_STRING", "")
    charset = settings.DEFAULT_CHARSET
    # WSGI hands the bytes over as latin-1 text; Django decodes them in the charset (and
    # keeps the latin-1 text when they are not valid in it)
    with contextlib.suppress(UnicodeError):
        raw = raw.encode("iso-8859-1").decode(charset)
    try:
        return dict(parse_qsl(raw, keep_blank_values=True, encoding=charset,
                              max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS))
    except ValueError as error:  # too many fields: what request.GET raises (a 400)
        raise TooManyFieldsSent("The number of GET/POST parameters exceeded "
                                "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.") from error


def _int(query: Mapping[str, str], key: str, low: int, high: int) -> int | None:
    if key not in query or query[key] == "":
        return None
    try:
        value = int(query[key])
    except ValueError:
        raise ParamInvalid(key, f"must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise ParamInvalid(key, f"must be from {low} to {high}")
    return value


def _float(query: Mapping[str, str], key: str, low: float, high: float) -> float | None:
    if key not in query or query[key] == "":
        return None
    try:
        value = float(query[key])
    except ValueError:
        raise ParamInvalid(key, f"must be a number from {low:g} to {high:g}") from None
    if not low <= value <= high:  # NaN fails too
        raise ParamInvalid(key, f"must be from {low:g} to {high:g}")
    return value


def _text(query: Mapping[str, str], key: str, pattern: str) -> str | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    if not re.fullmatch(pattern, value):
        raise ParamInvalid(key, f"must match {pattern}")
    return value


def _json(query: Mapping[str, str], key: str, parse: Any) -> Any:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    if len(raw) > 4000:
        raise ParamInvalid(key, "is longer than 4,000 characters")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ParamInvalid(key, f"is not valid JSON: {error}") from None
    try:
        return parse(value, field=key)
    except QueryError as error:
        raise ParamInvalid(error.field, error.detail) from None
