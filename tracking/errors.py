"""The errors a client can cause, each with its HTTP status and a stable code."""

from rest_framework import status
from rest_framework.exceptions import APIException


class ApiError(APIException):
    """An error answered as ``{"error": code, "detail": ..., "field": ...}``."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "malformed"

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail=detail, code=self.default_code)
        self.field = field


class EnvelopeInvalid(ApiError):
    """The batch as a whole is wrong (400); ``field`` says where."""

    default_code = "invalid"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail=f"{field}: {detail}", field=field)


class Malformed(ApiError):
    default_code = "malformed"


class UnknownKey(ApiError):
    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "unknown_key"


class OriginNotAllowed(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "origin_not_allowed"


class NoConsent(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "no_consent"


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"
