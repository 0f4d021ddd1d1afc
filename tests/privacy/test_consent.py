"""Consent: withdrawal stops storage at once; receipts and the audit log are append-only."""

import pytest
from django.db import DatabaseError, connection, transaction

from tests.conftest import make_event
from tracking import tasks
from tracking.models import ConsentReceipt, ConsentRecord, Event, PersonalDataAccess
from tracking.privacy.audit import access_log
from tracking.privacy.erasure import erasure_transaction

pytestmark = pytest.mark.django_db


def test_withdrawn_consent_stops_storage_at_once(consented_api, site):
    first = consented_api.collect([make_event()])
    assert first.status_code == 202 and first.json()["accepted"] == 1
    assert consented_api.consent("a_visitor1", analytics=False).status_code == 201
    refused = consented_api.collect([make_event()])  # the very next request
    assert refused.status_code == 403 and refused.json()["error"] == "no_consent"
    tasks.process_outbox()
    assert Event.objects.filter(site=site).count() == 1
    assert ConsentReceipt.objects.filter(site=site).count() == 2  # both choices kept


needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                      reason="the triggers are PostgreSQL's")


def refused(statement) -> bool:
    """Whether the database refuses the statement (inside a savepoint, so the test goes on)."""
    try:
        with transaction.atomic():
            statement()
    except DatabaseError as error:
        return "append-only" in str(error)
    return False


@needs_postgresql
def test_the_database_refuses_to_change_or_delete_a_consent_receipt(consented_api, site):
    receipts = ConsentReceipt.objects.filter(site=site)
    ConsentRecord.objects.filter(site=site).delete()  # the current state may go; proof not
    assert refused(lambda: receipts.update(analytics=False))
    assert refused(lambda: receipts.delete())
    with connection.cursor() as cursor:
        assert refused(lambda: cursor.execute("DELETE FROM tracking_consentreceipt"))
    assert receipts.get().analytics is True
    with erasure_transaction():  # erasure, and only erasure, may
        receipts.update(subject="")
    assert receipts.get().subject == ""


@needs_postgresql
def test_the_audit_log_is_append_only_and_erasure_may_only_blank_a_subject(site):
    entry = access_log(actor="alice", action="view", target="tracking.Event", subject="ab" * 16)
    entries = PersonalDataAccess.objects.filter(pk=entry.pk)
    assert refused(lambda: entries.update(actor="mallory"))
    assert refused(lambda: entries.delete())
    with erasure_transaction():
        assert refused(lambda: entries.update(actor="mallory", subject=""))
        entries.update(subject="")
    assert entries.get().subject == "" and entries.get().actor == "alice"


def test_the_texts_a_banner_version_showed_are_kept_and_shown_with_its_receipts(
        consented_api, site, admin_client, settings):
    from django.template import engines

    from tracking.models import BannerVersion

    settings.RECSITE = {**settings.RECSITE, "CONSENT_VERSION": "2026-11-01",
                        "CONSENT_TEXTS": {"title": "Cookies & you"}}
    page = engines["django"].from_string("{% load recsite %}{% recsite_tracker key=key %}")
    for _ in range(2):  # rendered on every page, recorded once
        assert "Cookies \\u0026 you" in page.render({"key": site.public_key})
    (shown,) = BannerVersion.objects.filter(site=site)
    assert shown.version == "2026-11-01" and shown.texts["title"] == "Cookies & you"
    receipt = ConsentReceipt.objects.get(site=site)  # the fixture's banner_version
    html = admin_client.get(f"/admin/tracking/consentreceipt/{receipt.pk}/change/") \
        .content.decode()
    assert "Cookies &amp; you" in html
