"""{% recsite_tracker %}: the tracker's script tag and the consent banner for a site."""

import json
import re

import pytest
from django.template import engines
from django.test import RequestFactory

from tracking.services import site_create

pytestmark = pytest.mark.django_db


def render(template: str = "{% recsite_tracker %}", request=None, **context) -> str:
    page = engines["django"].from_string("{% load recsite %}" + template)
    return page.render(context, request)


def consent_config(html: str) -> dict:
    found = re.search(r'<script id="recsite-consent-config" type="application/json">(.*?)'
                      r"</script>", html, re.S)
    assert found, html
    return json.loads(found.group(1))


def test_the_only_site_is_the_default_and_the_api_is_this_server(site):
    html = render()
    assert (f'<script defer src="/static/tracker/dist/tracker.min.js" '
            f'data-site="{site.public_key}" data-endpoint="/api/v1"></script>') in html
    assert '<link rel="stylesheet" href="/static/tracker/dist/consent.min.css">' in html
    assert '<script defer src="/static/tracker/dist/consent.min.js"></script>' in html
    # The queue stub comes first, so calls made before the tracker loads are kept.
    assert html.index("recsite.q=recsite.q||[]") < html.index("tracker.min.js")
    # The stylesheet comes before the banner's deferred script: it waits for it.
    assert html.index("consent.min.css") < html.index("consent.min.js")
    config = consent_config(html)
    assert config["version"] == "2026-11-24"
    assert config["accept"] == "Accept all" and config["reject"] == "Reject all"


def test_with_several_sites_a_key_is_needed(site):
    other = site_create(name="Other", origins=["https://other.example"]).site
    assert "<script" not in render()
    assert "no public key configured" in render()
    assert f'data-site="{other.public_key}"' in render('{% recsite_tracker key=k %}',
                                                       k=other.public_key)


def test_settings_name_the_key_endpoint_version_and_texts(site, settings):
    settings.RECSITE = {"PUBLIC_KEY": "pk_live_configured",
                        "ENDPOINT": "https://recs.example/api/v1", "CONSENT_VERSION": "2027-01",
                        "CONSENT_TEXTS": {"accept": "Alles akzeptieren"}}
    html = render()
    assert 'data-site="pk_live_configured" data-endpoint="https://recs.example/api/v1"' in html
    config = consent_config(html)
    assert (config["version"], config["accept"], config["reject"]) == (
        "2027-01", "Alles akzeptieren", "Reject all")


def test_options_batch_flush_banner_and_stub(site):
    html = render("{% recsite_tracker batch=5 flush_ms=250 banner=False stub=False %}")
    assert 'data-batch="5" data-flush-ms="250"' in html
    assert "consent.min" not in html and "recsite-consent-config" not in html
    assert "<script>" not in html  # no inline script at all: a strict CSP needs nothing


def test_the_inline_stub_carries_the_csp_nonce(site):
    request = RequestFactory().get("/")
    request.csp_nonce = "n0nce"
    assert '<script nonce="n0nce">window.recsite=' in render(request=request)


def test_values_are_escaped(site):
    html = render("{% recsite_tracker key=k %}", k='pk"><script>alert(1)</script>')
    assert "<script>alert(1)" not in html
    assert 'data-site="pk&quot;&gt;&lt;script&gt;' in html
