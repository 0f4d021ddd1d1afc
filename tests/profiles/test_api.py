"""GET /api/v1/subjects/{id}/profile: the site owner's backend reads a profile (secret key)."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from profiles.models import IdentityLink, Membership, Profile, Segment
from profiles.services import profiles_rescore
from tests.profiles.conftest import import_slice
from tracking.services import site_create, subject_hash

pytestmark = pytest.mark.django_db

CUSTOMER = "retail-17841"  # the slice's busiest customer


@pytest.fixture
def retail(site, deliver, data_clock):
    import_slice(deliver, site, "online-retail")
    profiles_rescore(site_id=site.pk)
    return site


def get(path: str, key: str | None, **params: str):
    headers = {} if key is None else {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    return Client(HTTP_HOST="localhost").get(path, params, **headers)


def test_a_customers_profile_and_segments(retail, site_keys):
    subject = subject_hash(site=retail, kind="u", raw_id=CUSTOMER)
    profile = Profile.objects.get(site=retail, subject=subject)
    segment = Segment.objects.create(site=retail, name="Regulars", slug="regulars")
    Membership.objects.create(segment=segment, site=retail, subject=subject,
                              since=timezone.now())

    response = get(f"/api/v1/subjects/{CUSTOMER}/profile", site_keys.secret_key)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["subject"] == subject and body["identified"] is True
    assert body["purchases"] == profile.purchases > 1
    assert body["monetary"] == pytest.approx(profile.monetary)
    assert body["rfm"] == {"r": profile.r_score, "f": profile.f_score, "m": profile.m_score,
                           "segment": profile.rfm_segment}
    assert body["rfm"]["segment"] and body["lifecycle"] == profile.stage
    assert body["events_by_type"] == profile.by_type
    assert body["recency_days"] >= 0
    assert [s["slug"] for s in body["segments"]] == ["regulars"]
    assert CUSTOMER not in response.content.decode()  # the raw id is not echoed or stored


def test_an_anon_id_that_logged_in_reads_the_users_profile(retail, site_keys):
    anon = subject_hash(site=retail, kind="a", raw_id="a_device")
    user = subject_hash(site=retail, kind="u", raw_id=CUSTOMER)
    IdentityLink.objects.create(site=retail, anon_subject=anon, user_subject=user,
                                day=timezone.now().date())

    response = get("/api/v1/subjects/a_device/profile", site_keys.secret_key, type="anon")

    assert response.status_code == 200 and response.json()["subject"] == user


@pytest.mark.parametrize(("path", "params", "key", "status", "code", "field"), [
    ("/api/v1/subjects/nobody-here/profile", {}, "good", 404, "not_found", "id"),
    (f"/api/v1/subjects/{CUSTOMER}/profile", {"type": "email"}, "good", 400, "invalid", "type"),
    ("/api/v1/subjects/null/profile", {}, "good", 400, "invalid", "id"),
    ("/api/v1/subjects/undefined/profile", {}, "good", 400, "invalid", "id"),
    (f"/api/v1/subjects/{'x' * 300}/profile", {}, "good", 400, "invalid", "id"),
    (f"/api/v1/subjects/{CUSTOMER}/profile", {}, None, 401, "unknown_key", None),
    (f"/api/v1/subjects/{CUSTOMER}/profile", {}, "sk_live_wrong", 401, "unknown_key", None),
    (f"/api/v1/subjects/{CUSTOMER}/profile", {}, "other site", 404, "not_found", "id"),
])
def test_errors_are_json_with_a_code(retail, site_keys, path, params, key, status, code, field):
    if key == "good":
        key = site_keys.secret_key
    elif key == "other site":
        key = site_create(name="Other", origins=["https://other.example"]).secret_key

    response = get(path, key, **params)

    assert response.status_code == status
    body = json.loads(response.content)
    assert body["error"] == code and body["detail"]
    assert body.get("field") == field


def test_the_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/subjects/{subject_id}/profile" in schema
    assert "recency_days" in schema
