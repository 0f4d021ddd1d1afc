"""POST /api/v1/consent: append-only receipts and the current state per subject."""

import pytest

from tracking.models import ConsentReceipt, ConsentRecord
from tracking.services import subject_hash


def test_records_a_receipt_and_the_current_state(api, site):
    response = api.consent("a_visitor1", analytics=True, personalization=False)
    assert response.status_code == 201
    data = response.json()
    receipt = ConsentReceipt.objects.get(receipt_id=data["receipt_id"])
    assert receipt.analytics and not receipt.personalization
    assert receipt.banner_version == "2026-11-01" and receipt.source == "banner"
    record = ConsentRecord.objects.get(site=site)
    assert record.subject == subject_hash(site=site, kind="a", raw_id="a_visitor1")
    assert record.receipt_id == receipt.receipt_id


def test_receipts_are_appended_and_the_record_follows_the_latest(api):
    api.consent("a_visitor1", analytics=True)
    api.consent("a_visitor1", analytics=False)
    assert ConsentReceipt.objects.count() == 2
    record = ConsentRecord.objects.get()
    assert record.analytics is False


def test_user_id_gets_a_record_too(api, site):
    api.consent("a_visitor1", analytics=True, user_id="u-42")
    subjects = set(ConsentRecord.objects.values_list("subject", flat=True))
    assert subject_hash(site=site, kind="u", raw_id="u-42") in subjects
    assert len(subjects) == 2


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"purposes": "all"}, "purposes"),
        ({"purposes": {"analytics": "yes"}}, "purposes.analytics"),
        ({"purposes": {"marketing": True}}, "purposes.marketing"),
        ({"source": "cookie"}, "source"),
        ({"source": "gpc", "purposes": {"analytics": True}}, "purposes"),
        ({"anon_id": None}, "anon_id"),
        ({"ts": "now"}, "ts"),
        ({"color": "blue"}, "color"),
    ],
)
def test_bad_consent_is_400_naming_the_field(api, site, override, field):
    body = {"site": site.public_key, "anon_id": "a1", "purposes": {"analytics": True},
            **override}
    body = {k: v for k, v in body.items() if v is not None}
    response = api.post("/api/v1/consent", body)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not ConsentReceipt.objects.exists()


def test_gpc_refusal_is_recorded(api, site):
    body = {"site": site.public_key, "anon_id": "a1", "source": "gpc",
            "purposes": {"analytics": False, "personalization": False}}
    assert api.post("/api/v1/consent", body).status_code == 201
    assert ConsentRecord.objects.get().analytics is False


def test_consent_needs_an_allowed_origin(api, site):
    body = {"site": site.public_key, "anon_id": "a1", "purposes": {"analytics": True}}
    assert api.post("/api/v1/consent", body, origin="https://evil.example").status_code == 403
    assert api.post("/api/v1/consent", {**body, "site": "pk_nope"}).status_code == 401
