"""URLs of the tracking API, mounted under /api/v1/."""

from django.urls import path

from tracking.api import ConsentApi, EventCollectApi, ServerEventsApi
from tracking.privacy.api import SubjectEraseApi, SubjectExportApi, SubjectRequestApi

urlpatterns = [
    path("collect", EventCollectApi.as_view(), name="collect"),
    path("events", ServerEventsApi.as_view(), name="events"),
    path("consent", ConsentApi.as_view(), name="consent"),
    path("subjects/<str:subject_id>", SubjectEraseApi.as_view(), name="subject-erase"),
    path("subjects/<str:subject_id>/export", SubjectExportApi.as_view(), name="subject-export"),
    path("subject-requests/<str:request_id>", SubjectRequestApi.as_view(),
         name="subject-request"),
]
