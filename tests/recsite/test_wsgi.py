"""recsite.wsgi: the hot API paths take the short middleware chain, everything else the whole.

Requests go through the WSGI application as gunicorn calls it (the test client would
bypass recsite.wsgi and run settings.MIDDLEWARE).
"""

import io
import json
import sys
from typing import Any

import pytest
from django.conf import settings

from recsite import handlers
from recsite.wsgi import application
from tests.conftest import ORIGIN, make_event, now_iso
from tracking.models import RawBatch

pytestmark = pytest.mark.usefixtures("wsgi_in_test_transaction")


def wsgi_call(method: str, path: str, body: bytes = b"", query: str = "", **headers: str
              ) -> tuple[int, dict[str, list[str]], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "text/plain",
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    answer: dict[str, Any] = {}

    def start_response(status: str, header_list: list[tuple[str, str]], exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = {}
        for name, value in header_list:
            answer["headers"].setdefault(name.lower(), []).append(value)

    chunks = application(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        chunks.close()
    return answer["status"], answer["headers"], content


def test_the_hot_api_chain_is_the_whole_chain_less_the_browser_only_middleware():
    chain = handlers.hot_api_middleware()

    assert chain == [m for m in settings.MIDDLEWARE if m not in handlers.BROWSER_ONLY_MIDDLEWARE]
    assert "django.middleware.security.SecurityMiddleware" in chain
    assert "corsheaders.middleware.CorsMiddleware" in chain
    assert "django.middleware.common.CommonMiddleware" in chain  # the allowed-host check
    assert "recsite.middleware.ServiceUnavailableMiddleware" in chain
    assert not set(chain) & handlers.BROWSER_ONLY_MIDDLEWARE
    assert chain != settings.MIDDLEWARE  # building the short chain left the setting alone


@pytest.mark.django_db
def test_collect_through_the_short_chain_stores_and_keeps_cors_and_security_headers(site):
    consent = {"site": site.public_key, "anon_id": "a_visitor1",
               "purposes": {"analytics": True, "personalization": False}}
    status, _, _ = wsgi_call("POST", "/api/v1/consent", json.dumps(consent).encode(),
                             origin=ORIGIN)
    assert status == 201  # through the whole chain
    body = {"site": site.public_key, "sent_at": now_iso(),
            "events": [make_event(), make_event(name="bad name")]}

    status, headers, content = wsgi_call("POST", "/api/v1/collect", json.dumps(body).encode(),
                                         origin=ORIGIN)

    assert status == 202, content
    answer = json.loads(content)
    assert answer["accepted"] == 1 and answer["rejected"][0]["index"] == 1
    assert headers["access-control-allow-origin"] == [ORIGIN]
    assert headers["x-content-type-options"] == ["nosniff"]
    assert "set-cookie" not in headers and "content-security-policy" not in headers
    assert RawBatch.objects.get().n_events == 1


@pytest.mark.django_db
def test_collect_refuses_an_unknown_host_and_answers_a_preflight(site):
    status, _, _ = wsgi_call("POST", "/api/v1/collect", b"{}", host="evil.example")
    assert status == 400  # DisallowedHost, as on every other path

    status, headers, _ = wsgi_call("OPTIONS", "/api/v1/collect", origin=ORIGIN,
                                   access_control_request_method="POST")
    assert status == 200 and headers["access-control-allow-origin"] == [ORIGIN]


@pytest.mark.django_db
def test_recommendations_through_the_short_chain(site):
    status, headers, content = wsgi_call(
        "GET", "/api/v1/recommendations", origin=ORIGIN,
        query=f"site={site.public_key}&placement=home&anon_id=a_0123456789abcdef")

    assert status == 200, content
    assert "items" in json.loads(content)
    assert headers["access-control-allow-origin"] == [ORIGIN]
    assert "content-security-policy" not in headers


@pytest.mark.django_db
def test_other_paths_keep_the_whole_chain():
    status, headers, _ = wsgi_call("GET", "/admin/login/")

    assert status == 200
    assert "content-security-policy" in headers  # the policy middleware ran
    assert headers["x-frame-options"] == ["DENY"]
    assert any(cookie.strip().startswith(settings.CSRF_COOKIE_NAME + "=")
               for cookie in headers.get("set-cookie", []))  # the login form's CSRF token
