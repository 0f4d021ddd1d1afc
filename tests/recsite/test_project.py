"""Project level: health, the OpenAPI schema and docs, JSON errors, the admin."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_cache(client, db):
    response = client.get("/healthz", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok"}


def test_openapi_schema_lists_the_endpoints(client):
    response = client.get("/api/schema/", HTTP_HOST="localhost",
                          HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in ("/api/v1/collect", "/api/v1/events", "/api/v1/consent"):
        assert "post" in schema["paths"][path], path
    collect = schema["paths"]["/api/v1/collect"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "429"} <= set(collect["responses"])


def test_docs_page_uses_bundled_assets_not_a_cdn(client):
    response = client.get("/api/docs/", HTTP_HOST="localhost")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower()


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/nothing", HTTP_HOST="localhost")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_admin_pages_render(client, site, db):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    for url in ("/admin/tracking/site/", "/admin/tracking/event/", "/admin/tracking/rawbatch/",
                "/admin/tracking/dailycount/", "/admin/tracking/consentreceipt/",
                "/admin/tracking/item/", "/admin/tracking/site/add/"):
        assert client.get(url, HTTP_HOST="localhost").status_code == 200, url


def test_admin_add_site_shows_the_secret_once(client, db):
    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post("/admin/tracking/site/add/", {
        "name": "Admin shop", "allowed_origins": '["https://a.example"]',
        "retention_days": 30, "require_consent": "on", "is_active": "on",
    }, HTTP_HOST="localhost", follow=True)
    assert response.status_code == 200
    assert b"sk_live_" in response.content
    from tracking.models import Site

    site = Site.objects.get(name="Admin shop")
    assert site.public_key.startswith("pk_live_") and site.subject_salt


def test_home_lists_sites(client, site):
    response = client.get("/", HTTP_HOST="localhost")
    assert response.status_code == 200
    assert site.public_key in response.content.decode()
