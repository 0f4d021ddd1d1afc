"""Production settings, security headers, the admin's brute-force lockout and CSRF, and
secret keys shown once and stored hashed."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import Resolver404, resolve

from tracking.models import Site
from tracking.services import secret_key_hash

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a long admin pass 42"


def deploy_check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("RECSITE_", "SECURE_", "HTTPS", "DEBUG", "SECRET_KEY"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**keep, "RECSITE_DATA_DIR": str(tmp_path), **env},
        capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    production = {"HTTPS_ONLY": "1", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
                  "ALLOWED_HOSTS": "recs.example.com"}
    result = deploy_check(production, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_a_plain_http_setup_lacks(tmp_path):
    result = deploy_check({"DEBUG": "1"}, tmp_path)
    assert result.returncode != 0
    found = set(re.findall(r"security\.W\d+", result.stdout + result.stderr))
    assert {"security.W004", "security.W008", "security.W012", "security.W016",
            "security.W018"} <= found, result.stderr


@pytest.mark.django_db
def test_pages_carry_the_policy_and_the_api_its_headers(settings):
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    page = Client().get("/admin/login/", secure=True)
    policy = page["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-eval'" not in policy
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert page["X-Frame-Options"] == "DENY" and page["X-Content-Type-Options"] == "nosniff"
    api = Client().get("/api/v1/recommendations?placement=home")
    assert api.status_code == 401 and api["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in api and api["X-Content-Type-Options"] == "nosniff"


# --- the admin login: brute-force lockout ----------------------------------------------


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("admin", "a@example.com", PASSWORD)


def login(client: Client, username: str, password: str, **headers: str):
    return client.post("/admin/login/?next=/admin/", {"username": username,
                                                       "password": password}, **headers)


def test_five_wrong_passwords_lock_the_address_and_the_user_out(admin_user):
    attacker = Client(REMOTE_ADDR="198.51.100.7")
    # A forged X-Forwarded-For changes nothing: no trusted proxy is configured.
    answers = [login(attacker, "admin", f"guess {n}", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
               for n in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]  # the form, then out
    locked = login(attacker, "admin", PASSWORD)
    assert locked.status_code == 429 and "_auth_user_id" not in attacker.session
    other_user = get_user_model().objects.create_superuser("ops", "o@example.com", PASSWORD)
    assert login(attacker, other_user.username, PASSWORD).status_code == 429  # the address
    # The user name is locked from every address; another user elsewhere logs in.
    assert login(Client(REMOTE_ADDR="192.0.2.1"), "admin", PASSWORD).status_code == 429
    elsewhere = Client(REMOTE_ADDR="192.0.2.1")
    assert login(elsewhere, "ops", PASSWORD).status_code == 302
    assert elsewhere.get("/admin/").status_code == 200


def test_a_right_password_before_the_limit_logs_in_and_resets_the_count(admin_user):
    client = Client(REMOTE_ADDR="198.51.100.8")
    for n in range(4):
        login(client, "admin", f"guess {n}")
    assert login(client, "admin", PASSWORD).status_code == 302
    client.logout()
    for n in range(4):
        assert login(client, "admin", f"again {n}").status_code == 200
    assert login(client, "admin", PASSWORD).status_code == 302


# --- CSRF on the admin and the erasure endpoint ----------------------------------------


def test_admin_posts_from_another_origin_without_a_token_are_refused(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    form = {"name": "Evil", "allowed_origins": '["https://evil.example"]',
            "retention_days": "30", "require_consent": "on", "is_active": "on"}
    forged = browser.post("/admin/tracking/site/add/", form, HTTP_ORIGIN="https://evil.example")
    assert forged.status_code == 403
    page = browser.get("/admin/tracking/site/add/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    # Even with a token, another origin is refused (Django checks Origin against the host).
    foreign = browser.post("/admin/tracking/site/add/", {**form, "csrfmiddlewaretoken": token},
                           HTTP_ORIGIN="https://evil.example")
    assert foreign.status_code == 403
    assert not Site.objects.exists()
    own = browser.post("/admin/tracking/site/add/", {**form, "csrfmiddlewaretoken": token},
                       HTTP_ORIGIN="http://testserver")
    assert own.status_code == 302 and Site.objects.filter(name="Evil").exists()


def test_the_erasure_endpoint_takes_no_cookie_and_no_cross_origin_call(
        admin_user, api, django_capture_on_commit_callbacks):
    """Erasure needs the secret key in a header, which a cross-origin page cannot send
    without a preflight that the API does not allow; an admin's session cookie counts
    for nothing there."""
    assert api.consent("a_visitor1").status_code == 201
    from tests.conftest import make_event

    with django_capture_on_commit_callbacks(execute=True):
        assert api.collect([make_event()]).status_code == 202
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    path = "/api/v1/subjects/a_visitor1?type=anon"
    served = _resolves(path.split("?")[0])
    erase = browser.delete(path, HTTP_ORIGIN="https://evil.example")
    assert erase.status_code in ((401, 403) if served else (404,)), erase.content
    preflight = browser.options(path, HTTP_ORIGIN="https://evil.example",
                                HTTP_ACCESS_CONTROL_REQUEST_METHOD="DELETE",
                                HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization")
    assert "Access-Control-Allow-Origin" not in preflight
    from tracking.models import Event

    assert Event.objects.filter(site=api.site).count() == 1  # nothing erased


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


# --- secret keys ------------------------------------------------------------------------


def test_the_admin_shows_a_new_secret_key_once_and_stores_only_its_hash(admin_user):
    browser = Client()
    browser.force_login(admin_user)
    form = {"name": "New shop", "allowed_origins": '["https://new.example"]',
            "retention_days": "30", "is_active": "on"}
    added = browser.post("/admin/tracking/site/add/", form, follow=True)
    keys = re.findall(r"sk_live_[A-Za-z0-9_-]{20,}", added.content.decode())
    assert len(set(keys)) == 1, keys
    key = keys[0]
    site = Site.objects.get(name="New shop")
    assert site.secret_key_hash == secret_key_hash(key) and site.secret_key_hint == key[:12]
    for url in ("/admin/tracking/site/", f"/admin/tracking/site/{site.pk}/change/"):
        assert key not in browser.get(url).content.decode()
    for model in apps.get_models():  # no table holds it
        for row in model.objects.all().values():
            assert key not in str(row), model


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "0"),  # X-Forwarded-For ignored: nobody in front to trust
    ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "1"),  # behind the named proxy
    ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto", "NUM_PROXIES": "2"}, "2"),
])
def test_trusted_proxies_follow_the_deployment(tmp_path, env, expected):
    keep = {k: v for k, v in os.environ.items()
            if k not in ("NUM_PROXIES", "SECURE_PROXY_SSL_HEADER")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import "
         "settings; print(settings.REST_FRAMEWORK['NUM_PROXIES'])"],
        cwd=ROOT, env={**keep, "RECSITE_DATA_DIR": str(tmp_path),
                       "DJANGO_SETTINGS_MODULE": "recsite.settings", **env},
        capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == expected, result.stderr
