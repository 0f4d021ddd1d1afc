"""Shapes of recommend's answers and requests, for the OpenAPI schema (the endpoints
build their JSON directly; these describe the same contract)."""

from django.core.validators import MaxLengthValidator
from rest_framework import serializers

from tracking.serializers import WHITESPACE, ClosedSerializer, id_field, schema_field

URL_PATTERN = f"^(https?://[^{WHITESPACE}]{{1,2040}})?$"  # recommend.catalog.URL_RE


class ReasonSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[
        "because_viewed", "similar_item", "category_affinity", "segment_popular", "trending",
        "popular", "for_you"])
    text = serializers.CharField(help_text='e.g. "Because you viewed Desk lamp"')
    item_id = serializers.CharField(required=False, help_text="the item behind the reason")
    segment = serializers.CharField(required=False)
    category = serializers.CharField(required=False)


class RecItemSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()
    image_url = serializers.CharField()
    price = serializers.FloatField(allow_null=True)
    currency = serializers.CharField()
    category = serializers.CharField()
    score = serializers.FloatField()
    reason = ReasonSerializer()


class RecListSerializer(serializers.Serializer):
    placement = serializers.CharField()
    title = serializers.CharField(help_text="the placement's heading")
    rec_token = serializers.CharField(help_text=(
        "signed: placement, variant, model version, subject, items, time; put it on the "
        "widget (data-rec-token) and pass it as after= for the next items"))
    variant = serializers.CharField(allow_null=True, help_text="the experiment variant")
    model_version = serializers.IntegerField(allow_null=True)
    more = serializers.BooleanField(help_text="whether after=rec_token may give more items")
    items = RecItemSerializer(many=True)


class CatalogItemInSerializer(ClosedSerializer):
    item_id = id_field(100)
    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20_000)
    category = serializers.CharField(required=False, allow_blank=True, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(allow_blank=True, max_length=100),
                                 required=False, max_length=50)
    price = serializers.FloatField(required=False, allow_null=True, min_value=0,
                                   max_value=1e12)
    currency = serializers.RegexField(r"^([A-Za-z]{3})?$", required=False, allow_blank=True)
    url = serializers.RegexField(URL_PATTERN, required=False, allow_blank=True)
    image_url = serializers.RegexField(URL_PATTERN, required=False, allow_blank=True)
    available = serializers.BooleanField(required=False, help_text="false takes it down")
    attributes = serializers.DictField(
        child=schema_field({"oneOf": [{"type": "string", "maxLength": 500}, {"type": "number"},
                                      {"type": "boolean"}], "nullable": True}),
        required=False, validators=[MaxLengthValidator(30)],
        help_text="30 keys at most (letters, digits, _ . -), scalar values")


class ItemsInSerializer(ClosedSerializer):
    items = serializers.ListField(child=CatalogItemInSerializer(), min_length=1,
                                  max_length=1000, help_text="fields left out keep their values")


class UpsertOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unavailable = serializers.IntegerField(help_text="of the items sent, those now taken down")
