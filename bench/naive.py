"""The naive baseline: a DRF ModelSerializer saving ONE event per request with the ORM.

What a first implementation would look like: the default JSON parser, the
serializer's validation (a query for the site, one for the unique-together
check) and ``serializer.save()``, one INSERT and one commit per event. Served
only by bench/settings.py, never by the project.
"""

from rest_framework import generics, serializers

from tracking.models import Event


class NaiveEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["site", "event_id", "item_index", "subject", "user_subject", "session", "name",
                  "item_id", "ts", "value", "currency", "quantity", "engaged_ms", "scroll_pct",
                  "rec_token", "source", "context"]


class NaiveEventCreateApi(generics.CreateAPIView):
    """POST one event; 201 with the stored event."""

    queryset = Event.objects.all()
    serializer_class = NaiveEventSerializer
    authentication_classes: list = []
    permission_classes: list = []
