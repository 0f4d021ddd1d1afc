"""Request body parsers: bounded JSON, also sent as text/plain by navigator.sendBeacon.

They read at most the size limit (plus one byte to notice more), answer 413
above it whatever Content-Length claims, and turn every decoding problem,
invalid UTF-8 and nesting deeper than the bound included, into a 400 that says
where. Text PostgreSQL cannot store is replaced, not refused: a NUL (``\u0000``)
or a lone surrogate (``\ud83d`` alone: what a browser's JSON.stringify sends for
a string cut in the middle of an emoji) reads as U+FFFD, in keys too.
"""

import json
import re
from typing import Any

import orjson
from rest_framework.parsers import BaseParser

from tracking.conf import tracking_settings
from tracking.errors import Malformed, PayloadTooLarge
from tracking.validation import json_depth_exceeds


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        return self.body_parse(self.body_read(stream))

    def body_read(self, stream: Any) -> bytes:
        """The body, read up to the size limit (413 past it; 400 for an empty one)."""
        limit = tracking_settings.MAX_BODY_BYTES
        if stream is None:
            raise Malformed("the request body is empty; send a JSON object")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        if not body.strip():
            raise Malformed("the request body is empty; send a JSON object")
        return body

    def body_parse(self, body: bytes) -> dict[str, Any]:
        """The JSON object in ``body`` (400 saying what is wrong otherwise)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            if "surrogate" not in str(error):
                raise Malformed(f"the body is not valid JSON: {error}") from None
            data = None  # lone surrogates: parsed below, once the depth is known to be bounded
        if data is not None and not isinstance(data, dict):
            raise Malformed("the body must be a JSON object")
        if json_depth_exceeds(body, tracking_settings.MAX_DEPTH):
            raise Malformed(f"the JSON nests deeper than {tracking_settings.MAX_DEPTH} levels")
        if data is None:
            data = _loads_with_lone_surrogates(body)
        elif b"\\u0000" in body:
            data = unstorable_replaced(data)
        return data


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_replaced(value: Any) -> Any:
    """``value`` with NUL and lone surrogates replaced by U+FFFD in every string and key."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [unstorable_replaced(item) for item in value]
    if isinstance(value, dict):
        return {unstorable_replaced(key): unstorable_replaced(item)
                for key, item in value.items()}
    return value


def _loads_with_lone_surrogates(body: bytes) -> dict:
    """The JSON object in ``body``, read by Python's decoder (which keeps lone surrogates,
    where orjson refuses them) with orjson's rules otherwise: UTF-8 only, no NaN or
    Infinity, an integer past 64 bits read as a float."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constant,
                          parse_int=_int64)
    except (UnicodeDecodeError, ValueError) as error:
        raise Malformed(f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise Malformed("the body must be a JSON object")
    return unstorable_replaced(data)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _int64(text: str) -> int | float:
    value = int(text) if len(text) < 30 else None
    if value is None or not -(2**63) <= value < 2**64:
        return float(text)
    return value


class PlainTextJSONParser(BoundedJSONParser):
    """The same JSON, labelled text/plain: what sendBeacon sends without a CORS preflight."""

    media_type = "text/plain"
