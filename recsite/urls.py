"""Top-level URLs: the admin, the API, its schema and docs, health."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from recsite.views import healthz, home

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("tracking.urls")),
    path("api/v1/", include("profiles.urls")),
    path("api/v1/", include("recommend.urls")),
    path("shop/", include("demo.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script from a URL, so the docs need no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]

handler400 = "recsite.views.bad_request"
handler404 = "recsite.views.page_not_found"
handler500 = "recsite.views.server_error"
