"""Every API error as JSON: ``{"error": "<code>", "detail": ...}``, never an HTML page."""

import math
from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from tracking.errors import ApiError

_CODES = {
    exceptions.ParseError: "malformed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAuthenticated: "unknown_key",
    exceptions.AuthenticationFailed: "unknown_key",
    exceptions.NotFound: "not_found",
    exceptions.PermissionDenied: "forbidden",
    exceptions.ValidationError: "invalid",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = getattr(exc, "default_code", "error")
    for cls, name in _CODES.items():
        if isinstance(exc, cls):
            code = name
    body: dict[str, Any] = {"error": code}
    detail = response.data.get("detail", response.data) if isinstance(response.data, dict) \
        else response.data
    body["detail"] = detail
    if isinstance(exc, ApiError) and exc.field:
        body["field"] = exc.field
    if isinstance(exc, exceptions.Throttled):
        # Always a whole second or more: DRF sends no header at all when the wait rounds
        # to 0 (a request that ended just as its window did), and clients need one.
        wait = max(1, math.ceil(exc.wait or 0))
        body["retry_after"] = wait
        response["Retry-After"] = str(wait)
    response.data = body
    return response

