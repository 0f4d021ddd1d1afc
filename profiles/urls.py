"""URLs of the profiles API, mounted under /api/v1/."""

from django.urls import path

from profiles.api import SubjectProfileApi

urlpatterns = [
    path("subjects/<str:subject_id>/profile", SubjectProfileApi.as_view(),
         name="subject-profile"),
]
