"""Shapes of recommend's answers and requests, for the OpenAPI schema (the endpoints
build their JSON directly; these describe the same contract)."""

from rest_framework import serializers


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


class CatalogItemInSerializer(serializers.Serializer):
    item_id = serializers.CharField(max_length=100)
    title = serializers.CharField(required=False, max_length=500)
    description = serializers.CharField(required=False)
    category = serializers.CharField(required=False, max_length=200)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    price = serializers.FloatField(required=False, allow_null=True)
    currency = serializers.CharField(required=False, max_length=3)
    url = serializers.URLField(required=False)
    image_url = serializers.URLField(required=False)
    available = serializers.BooleanField(required=False, help_text="false takes it down")
    attributes = serializers.DictField(required=False)


class ItemsInSerializer(serializers.Serializer):
    items = CatalogItemInSerializer(many=True, help_text="1,000 at most; fields left out "
                                    "keep their values")


class UpsertOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unavailable = serializers.IntegerField(help_text="of the items sent, those now taken down")
