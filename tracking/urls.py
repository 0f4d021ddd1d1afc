"""URLs of the tracking API, mounted under /api/v1/."""

from django.urls import path

from tracking.api import ConsentApi, EventCollectApi, ServerEventsApi

urlpatterns = [
    path("collect", EventCollectApi.as_view(), name="collect"),
    path("events", ServerEventsApi.as_view(), name="events"),
    path("consent", ConsentApi.as_view(), name="consent"),
]
