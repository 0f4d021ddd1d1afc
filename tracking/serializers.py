"""Shapes of the API's requests and answers, for the OpenAPI schema.

The hot path validates with ``tracking.validation`` (faster than serializers,
and it reports per-event errors by index); these describe the same contract,
types and limits included, so that whatever the schema calls invalid is refused
(tests/badinput/test_schema_fuzz.py holds the API to it).
"""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tracking import validation as v


class ClosedSerializer(serializers.Serializer):
    """A request object whose unknown fields are refused; its schema says so."""


class ClosedSerializerSchema(OpenApiSerializerExtension):
    target_class = ClosedSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


def schema_field(schema: dict[str, Any], **kwargs: Any) -> serializers.Field:
    """A field documented by a raw OpenAPI schema (these serializers only describe)."""
    field_class = type("SchemaField", (serializers.JSONField,), {})
    return extend_schema_field(schema)(field_class)(**kwargs)


def time_field(**kwargs: Any) -> serializers.Field:
    epoch_ms = {"type": "number", "minimum": 0, "maximum": 1e14, "exclusiveMaximum": True}
    return schema_field({"oneOf": [{"type": "string", "format": "date-time"}, epoch_ms],
                          "description": "ISO 8601 with a zone, or epoch milliseconds"},
                         **kwargs)


# Whitespace as Python's str.strip() and re's \s see it (ECMA's \s differs), for patterns.
WHITESPACE = ("\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f"
              "\\u205f\\u3000")
NOT_BLANK = f"[^{WHITESPACE}]"
# JSON integers a parser reads as integers (orjson reads larger ones as floats).
INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1}


def id_field(max_length: int, **kwargs: Any) -> serializers.Field:
    """An identifier: a string that is not blank, or an integer (dataLayer ids often are)."""
    return schema_field({"oneOf": [{"type": "string", "minLength": 1, "maxLength": max_length,
                                    "pattern": NOT_BLANK}, INT64]}, **kwargs)


def user_id_field() -> serializers.Field:
    return schema_field(
        {"oneOf": [{"type": "string", "maxLength": v.MAX_ID}, {"type": "number"},
                   {"type": "boolean"}], "nullable": True,
         "description": "the site's user id; null, booleans and junk such as \"undefined\" "
         "mean no user"}, required=False, allow_null=True)


def _free_values(levels: int) -> dict[str, Any]:
    """Custom values: scalars, or lists and objects of them ``levels`` levels deep."""
    scalar = {"nullable": True, "oneOf": [{"type": "string", "maxLength": v.MAX_TEXT},
                                          {"type": "number"}, {"type": "boolean"}]}
    if levels == 0:
        return scalar
    inner = _free_values(levels - 1)
    return {"nullable": True, "oneOf": [
        *scalar["oneOf"], {"type": "array", "maxItems": v.MAX_LIST, "items": inner},
        {"type": "object", "maxProperties": v.MAX_LIST, "additionalProperties": inner}]}


def free_object(max_keys: int, description: str, known: dict | None = None,
                levels: int = 2) -> serializers.Field:
    """An object of custom values; keys are letters, digits, _ . - (64 at most)."""
    schema = {"type": "object", "nullable": True, "maxProperties": max_keys,
              "properties": known or {}, "additionalProperties": _free_values(levels),
              "description": description}
    return schema_field(schema, required=False, allow_null=True)


def _number(low: float, high: float, **extra: Any) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high, "nullable": True, **extra}


class PageSerializer(ClosedSerializer):
    url = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                max_length=v.MAX_URL)
    referrer = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                     max_length=v.MAX_URL)
    title = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                  max_length=v.MAX_TEXT)
    path = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                 max_length=v.MAX_URL)


ITEM_SCHEMA = {
    "type": "object", "required": ["item_id"], "maxProperties": v.MAX_ITEM_KEYS,
    "properties": {
        "item_id": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 100,
                               "pattern": NOT_BLANK}, INT64]},
        "price": _number(-1e12, 1e12),
        "quantity": _number(-1_000_000, 1_000_000, type="integer"),
    },
    "additionalProperties": _free_values(1),
    "description": "item_id, price, quantity and custom fields (item_name, item_category, "
                   "...: scalars or lists/objects of them)",
}
KNOWN_PARAMS = {
    "engaged_ms": _number(0, v.MAX_ENGAGED_MS, type="integer"),
    "scroll_pct": _number(0, 100, type="integer"),
    "rec_token": {"type": "string", "maxLength": v.MAX_TEXT, "nullable": True},
    "value": _number(-1e12, 1e12),
    "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "nullable": True},
}


class EventInSerializer(ClosedSerializer):
    event_id = serializers.UUIDField()
    name = serializers.RegexField(r"^[a-z][a-z0-9_]{0,39}$")
    ts = time_field()
    anon_id = id_field(v.MAX_ID, required=False, allow_null=True)
    user_id = user_id_field()
    session_id = id_field(100, required=False, allow_null=True)
    page = PageSerializer(required=False, allow_null=True)
    context = free_object(v.MAX_CONTEXT, "device, viewport, locale, tz, ... (keys page, "
                          "params, item and client_session are reserved)")
    items = schema_field({"type": "array", "nullable": True, "maxItems": v.MAX_ITEMS,
                          "items": ITEM_SCHEMA}, required=False, allow_null=True)
    params = free_object(v.MAX_PARAMS, "engaged_ms, scroll_pct, rec_token, value, currency "
                         "and custom values (transaction_id, ...)", known=KNOWN_PARAMS)


class ServerBatchInSerializer(ClosedSerializer):
    site = serializers.CharField(required=False, help_text="ignored: the key says the site")
    sent_at = time_field(required=False, allow_null=True,
                         help_text="client clock at sending, to correct its skew")
    events = serializers.ListField(child=EventInSerializer(), min_length=1, max_length=500,
                                   help_text="500 at most (413 above)")


class BatchInSerializer(ServerBatchInSerializer):
    site = serializers.CharField(max_length=64, help_text="the site's public key")  # required


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    reason = serializers.ChoiceField(["invalid", "no_consent", "too_large"])
    field = serializers.CharField()
    detail = serializers.CharField()


class BatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = RejectionSerializer(many=True)


class PurposesSerializer(ClosedSerializer):
    analytics = serializers.BooleanField(required=False)
    personalization = serializers.BooleanField(required=False)
    necessary = serializers.JSONField(required=False, help_text="implied; its value is "
                                      "ignored")


class ConsentInSerializer(ClosedSerializer):
    site = serializers.CharField(max_length=64)
    anon_id = id_field(v.MAX_ID, required=False, allow_null=True,
                       help_text="required unless a user_id is given")
    user_id = user_id_field()
    purposes = PurposesSerializer()
    banner_version = serializers.CharField(required=False, allow_blank=True, max_length=64)
    source = serializers.ChoiceField(["banner", "gpc", "api"], required=False)
    ts = time_field(required=False, allow_null=True)


class ConsentOutSerializer(serializers.Serializer):
    receipt_id = serializers.UUIDField()
    recorded_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.JSONField()
    field = serializers.CharField(required=False)
