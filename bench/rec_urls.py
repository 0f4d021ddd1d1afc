"""The project's URLs plus ``bench/redis-get``: a bare Django view answering one Redis GET
of a stored recommendation answer, the ceiling bench/recommendations.py compares with."""

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import path

from recsite.urls import *  # noqa: F403  (handler400/404/500 too)
from recsite.urls import urlpatterns as _project_urlpatterns

CEILING_KEY = "bench:ceiling-answer"


def redis_get(request: HttpRequest) -> HttpResponse:
    """The stored answer's bytes, with the same cache client the project uses."""
    value = cache._cache.get_client(write=False).get(CEILING_KEY)
    return HttpResponse(value or b"{}", content_type="application/json")


urlpatterns = [
    *_project_urlpatterns,
    path("bench/redis-get", redis_get, name="bench-redis-get"),
]
