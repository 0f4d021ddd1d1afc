"""Shapes of the API's requests and answers, for the OpenAPI schema.

The hot path validates with ``tracking.validation`` (faster than serializers,
and it reports per-event errors by index); these describe the same contract.
"""

from rest_framework import serializers


class ItemInSerializer(serializers.Serializer):
    item_id = serializers.CharField(max_length=100)
    item_name = serializers.CharField(required=False)
    item_category = serializers.CharField(required=False)
    price = serializers.FloatField(required=False)
    quantity = serializers.IntegerField(required=False)


class EventInSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    name = serializers.RegexField(r"^[a-z][a-z0-9_]{0,39}$")
    ts = serializers.DateTimeField(help_text="ISO 8601 with a zone, or epoch milliseconds")
    anon_id = serializers.CharField(required=False, allow_null=True)
    user_id = serializers.CharField(required=False, allow_null=True)
    session_id = serializers.CharField(required=False, allow_null=True)
    page = serializers.DictField(required=False, help_text="url, referrer, title, path")
    context = serializers.DictField(required=False, help_text="device, viewport, locale, tz, ...")
    items = ItemInSerializer(many=True, required=False)
    params = serializers.DictField(
        required=False, help_text="engaged_ms, scroll_pct, rec_token, value, currency, "
        "transaction_id and custom scalars"
    )


class BatchInSerializer(serializers.Serializer):
    site = serializers.CharField(help_text="the public site key (collect) ; ignored by events")
    sent_at = serializers.DateTimeField(required=False, help_text="client clock at sending")
    events = EventInSerializer(many=True)


class RejectionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    reason = serializers.ChoiceField(["invalid", "no_consent", "too_large"])
    field = serializers.CharField()
    detail = serializers.CharField()


class BatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = RejectionSerializer(many=True)


class ConsentInSerializer(serializers.Serializer):
    site = serializers.CharField()
    anon_id = serializers.CharField(required=False, allow_null=True)
    user_id = serializers.CharField(required=False, allow_null=True)
    purposes = serializers.DictField(child=serializers.BooleanField())
    banner_version = serializers.CharField(required=False)
    source = serializers.ChoiceField(["banner", "gpc", "api"], required=False)
    ts = serializers.DateTimeField(required=False)


class ConsentOutSerializer(serializers.Serializer):
    receipt_id = serializers.UUIDField()
    recorded_at = serializers.DateTimeField()


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.JSONField()
    field = serializers.CharField(required=False)
