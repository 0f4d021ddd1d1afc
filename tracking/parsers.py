"""Request body parsers: bounded JSON, also sent as text/plain by navigator.sendBeacon.

They read at most the size limit (plus one byte to notice more), answer 413
above it whatever Content-Length claims, and turn every decoding problem,
invalid UTF-8, lone surrogates and nesting deeper than the bound included, into
a 400 that says where.
"""

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
        limit = tracking_settings.MAX_BODY_BYTES
        if stream is None:
            raise Malformed("the request body is empty; send a JSON object")
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over {limit} bytes")
        if not body.strip():
            raise Malformed("the request body is empty; send a JSON object")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise Malformed(f"the body is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise Malformed("the body must be a JSON object")
        if json_depth_exceeds(body, tracking_settings.MAX_DEPTH):
            raise Malformed(f"the JSON nests deeper than {tracking_settings.MAX_DEPTH} levels")
        return data


class PlainTextJSONParser(BoundedJSONParser):
    """The same JSON, labelled text/plain: what sendBeacon sends without a CORS preflight."""

    media_type = "text/plain"
