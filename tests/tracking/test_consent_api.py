"""POST /api/v1/consent: append-only receipts and the current state per subject."""

import pytest
from django.core.cache import cache

from tracking.models import ConsentReceipt, ConsentRecord
from tracking.services import consent_analytics_granted, consent_cache_key, subject_hash


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


def consent_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "tracking_consentrecord" in q["sql"]]


def test_the_consent_state_is_read_from_the_cache_after_the_first_batch(api, site):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import make_event

    assert api.consent("a_visitor1").status_code == 201
    cache.delete(consent_cache_key(site.pk, subject_hash(site=site, kind="a",
                                                         raw_id="a_visitor1")))
    with CaptureQueriesContext(connection) as first:
        assert api.collect([make_event()]).status_code == 202
    with CaptureQueriesContext(connection) as second:
        assert api.collect([make_event()]).status_code == 202
    assert len(consent_queries(first.captured_queries)) == 1  # filled from the database
    assert consent_queries(second.captured_queries) == []


def test_withdrawing_and_granting_again_take_effect_at_once_through_the_cache(api):
    from tests.conftest import make_event

    assert api.consent("a_visitor1").status_code == 201
    assert api.collect([make_event()]).status_code == 202  # the cache now says granted
    assert api.consent("a_visitor1", analytics=False).status_code == 201
    assert api.collect([make_event()]).status_code == 403
    assert api.consent("a_visitor1", analytics=True).status_code == 201
    assert api.collect([make_event()]).status_code == 202


def test_deleting_the_record_forgets_the_cached_state(api, site):
    from tests.conftest import make_event

    assert api.consent("a_visitor1").status_code == 201
    assert api.collect([make_event()]).status_code == 202
    ConsentRecord.objects.filter(site=site).get().delete()  # as an admin or an erasure would
    assert api.collect([make_event()]).status_code == 403


def test_a_fill_never_overwrites_a_fresher_choice(api, site,
                                                django_capture_on_commit_callbacks):
    """A reader that found no record must not undo a consent given meanwhile."""
    subject = subject_hash(site=site, kind="a", raw_id="a_visitor1")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.consent("a_visitor1").status_code == 201  # writes 1 on commit
    assert cache.get(consent_cache_key(site.pk, subject)) == 1
    cache.add(consent_cache_key(site.pk, subject), 0)  # what a stale reader's fill does
    assert consent_analytics_granted(site=site, subjects={subject}) == {subject}
