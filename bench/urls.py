"""The project's URLs plus the routes bench/ingest.py measures against.

``bench/naive/event`` is the naive baseline (bench/naive.py); ``bench/hello`` is
a Django view that does nothing, to calibrate this machine against the figures
in ARCHITECTURE.md.
"""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.naive import NaiveEventCreateApi
from recsite.urls import *  # noqa: F403  (handler400/404/500 too)
from recsite.urls import urlpatterns as _project_urlpatterns


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    *_project_urlpatterns,
    path("bench/naive/event", NaiveEventCreateApi.as_view(), name="bench-naive-event"),
    path("bench/hello", hello, name="bench-hello"),
]
