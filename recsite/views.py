"""Project-level pages: the landing page, the health check, JSON error pages for the API."""

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults

from tracking.selectors import site_overview_list


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"sites": site_overview_list()})


def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the cache answer, 503 otherwise (for load balancers)."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"error: {type(error).__name__}"
    try:
        cache.set("healthz", 1, timeout=5)
        checks["cache"] = "ok" if cache.get("healthz") == 1 else "error: no read-back"
    except Exception as error:
        checks["cache"] = f"error: {type(error).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unhealthy", **checks},
                        status=200 if healthy else 503)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": "not_found", "detail": f"no endpoint at {request.path}"},
                            status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": "malformed", "detail": "the request could not be read"},
                            status=400)
    return defaults.bad_request(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"error": "server_error", "detail": "an unexpected error; logged"},
                            status=500)
    return defaults.server_error(request)
