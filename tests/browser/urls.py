"""The project's URLs plus the browser tests' pages."""

from django.urls import path

from recsite.urls import urlpatterns as project_urlpatterns
from tests.browser import pages

urlpatterns = [
    path("test/shop/", pages.shop),
    path("test/plain/", pages.plain),
    *project_urlpatterns,
]
