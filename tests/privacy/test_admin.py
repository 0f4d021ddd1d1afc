"""The privacy admin: personal data only with the permission, every view in the audit log,
consent receipts found by a typed id, exported as CSV, and requests run from the admin."""

import pytest
from django.contrib.auth.models import Permission, User

from tests.conftest import make_event
from tests.privacy.conftest import hashes_of
from tracking import tasks
from tracking.models import DataSubjectRequest, Event, PersonalDataAccess

pytestmark = pytest.mark.django_db(transaction=True)
USER = "customer-9"


def staff(client, *codenames: str):
    user = User.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


@pytest.fixture
def visitor(consented_api, site):
    assert consented_api.consent("a_visitor1", user_id=USER).status_code == 201
    consented_api.collect([make_event(user_id=USER)])
    tasks.process_outbox()
    return hashes_of(site, anon_id="a_visitor1", user_id=USER)


def test_staff_without_the_permission_see_aggregates_not_personal_data(client, visitor):
    staff(client, "view_event", "view_consentreceipt", "view_dailycount", "view_site")
    assert client.get("/admin/tracking/dailycount/").status_code == 200
    assert client.get("/admin/tracking/site/").status_code == 200
    for page in ("event", "consentreceipt", "consentrecord", "rawbatch", "datasubjectrequest",
                 "personaldataaccess"):
        assert client.get(f"/admin/tracking/{page}/").status_code == 403, page
    index = client.get("/admin/").content.decode()
    assert "Daily counts" in index and "Consent receipts" not in index


def test_with_the_permission_views_are_logged_and_a_typed_id_finds_its_receipts(client,
                                                                                visitor):
    staff(client, "view_event", "view_consentreceipt", "view_personal_data")
    page = client.get("/admin/tracking/consentreceipt/", {"q": USER})
    assert page.status_code == 200
    html = page.content.decode()
    assert "1 result" in html and "analytics (since" in html and "all receipts" in html
    searched = PersonalDataAccess.objects.filter(action="search")
    assert {entry.subject for entry in searched} == visitor  # the anon and the user hash
    assert all(entry.actor.startswith("staff") for entry in searched)
    assert USER not in str(list(PersonalDataAccess.objects.values()))  # never the raw id

    event = Event.objects.get()
    assert client.get(f"/admin/tracking/event/{event.pk}/change/").status_code == 200
    viewed = PersonalDataAccess.objects.get(action="view")
    assert viewed.object_id == str(event.pk) and viewed.subject == event.subject


def test_receipts_export_as_csv(client, visitor, site):
    staff(client, "view_consentreceipt", "view_personal_data")
    from tracking.models import ConsentReceipt

    receipts = ConsentReceipt.objects.filter(site=site)
    response = client.post("/admin/tracking/consentreceipt/", {
        "action": "export_csv", "_selected_action": [str(r.pk) for r in receipts]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert lines[0].startswith("receipt_id,site,subject") and len(lines) == 1 + receipts.count()
    assert PersonalDataAccess.objects.filter(action="export_csv").exists()


def test_an_admin_erases_and_exports_by_typing_an_id(admin_client, visitor, site, settings,
                                                     tmp_path):
    settings.RECSITE = {**settings.RECSITE, "EXPORT_DIR": str(tmp_path)}
    form = {"site": site.pk, "kind": "export", "id_type": "user", "raw_id": USER}
    assert admin_client.post("/admin/tracking/datasubjectrequest/add/", form).status_code == 302
    export = DataSubjectRequest.objects.get(kind="export")
    assert export.status == "done" and export.counts["tracking.Event"] == 1
    download = admin_client.get(f"/admin/tracking/datasubjectrequest/{export.pk}/download/")
    assert download.status_code == 200 and b"tracking.Event" in b"".join(
        download.streaming_content)

    unconfirmed = admin_client.post("/admin/tracking/datasubjectrequest/add/",
                                    {**form, "kind": "erase"})
    assert unconfirmed.status_code == 200 and not DataSubjectRequest.objects.filter(
        kind="erase").exists()
    bad = admin_client.post("/admin/tracking/datasubjectrequest/add/",
                            {**form, "raw_id": "undefined"})
    assert bad.status_code == 200 and "is not a user id" in bad.content.decode()
    done = admin_client.post("/admin/tracking/datasubjectrequest/add/",
                             {**form, "kind": "erase", "confirm": "on"})
    assert done.status_code == 302
    erase = DataSubjectRequest.objects.get(kind="erase")
    assert erase.status == "done" and erase.counts["tracking.Event"] == 1
    assert not Event.objects.exists()
    page = admin_client.get(f"/admin/tracking/datasubjectrequest/{erase.pk}/change/")
    assert page.status_code == 200 and "tracking.Event" in page.content.decode()
    assert not (tmp_path / export.export_file).exists()  # the export went with the subject


def test_an_attribution_page_leaves_the_subject_hash_out(client, site):
    from django.utils import timezone

    from recommend.models import Attribution

    row = Attribution.objects.create(site=site, event_pk=1, kind="click", ts=timezone.now(),
                                     placement="home", subject="f" * 32, issued_at=timezone.now())
    staff(client, "view_attribution")
    page = client.get(f"/admin/recommend/attribution/{row.pk}/change/")
    assert page.status_code == 200 and "home" in page.content.decode()
    assert "f" * 32 not in page.content.decode()
