"""Data subject requests through the API, the shell and the services (tasks in-process)."""

import io
import json
import zipfile

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import make_event
from tests.privacy.conftest import hashes_of, rows_naming
from tracking import tasks
from tracking.models import ConsentRecord, DataSubjectRequest, Event, PersonalDataAccess, RawBatch
from tracking.privacy.keys import subject_key_rotate
from tracking.privacy.requests import subject_request_create, subject_request_run
from tracking.privacy.subjects import subject_hashes

pytestmark = pytest.mark.django_db(transaction=True)
USER = "customer-77"


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.RECSITE = {**settings.RECSITE, "EXPORT_DIR": str(tmp_path / "exports")}
    return tmp_path / "exports"


def bearer(api, key: str | None = None) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {key or api.secret_key}"}


def stored(consented_api, **event) -> None:
    """Events of a_visitor1 logged in as USER, collected and processed (tasks in-process)."""
    response = consented_api.collect([make_event(user_id=USER, **event)])
    assert response.json()["accepted"] == 1
    tasks.process_outbox()


def test_delete_erases_at_once_in_process_and_answers_the_proof(consented_api, site):
    stored(consented_api)
    other = consented_api.consent("a_someone_else")
    assert other.status_code == 201
    response = consented_api.client.delete(f"/api/v1/subjects/{USER}", **bearer(consented_api))
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["kind"] == "erase" and body["status"] == "done"
    assert body["counts"]["tracking.Event"] == 1
    assert body["counts"]["tracking.ConsentReceipt"] == 1
    assert body["counts"]["tracking.RawBatch"] == 1
    assert rows_naming(hashes_of(site, anon_id="a_visitor1", user_id=USER)) == {}
    assert ConsentRecord.objects.filter(site=site).count() == 1  # the other visitor's

    # Idempotent: asked again, nothing is left to delete, and the answer says so.
    again = consented_api.client.delete(f"/api/v1/subjects/{USER}", **bearer(consented_api))
    assert again.status_code == 202
    assert again.json()["counts"]["tracking.Event"] == 0
    assert again.json()["request_id"] != body["request_id"]
    status = consented_api.client.get(response["Location"], **bearer(consented_api))
    assert status.status_code == 200 and status.json()["counts"] == body["counts"]


def test_a_request_runs_once_however_often_its_task_runs(consented_api, site):
    stored(consented_api)
    made = subject_request_create(site=site, kind="erase", id_type="user", raw_id=USER,
                                  requested_by="test", enqueue=False)
    assert made.created
    again = subject_request_create(site=site, kind="erase", id_type="user", raw_id=USER,
                                   requested_by="test", enqueue=False)
    assert not again.created and again.request.pk == made.request.pk  # a pending one reused
    first = tasks.run_subject_request(str(made.request.pk))
    request = DataSubjectRequest.objects.get(pk=made.request.pk)
    assert first == tasks.run_subject_request(str(made.request.pk)) == "done"
    assert DataSubjectRequest.objects.get(pk=made.request.pk).counts == request.counts
    assert request.counts["tracking.Event"] == 1 and request.subject == ""


def test_export_returns_every_row_as_json_and_as_a_zip_when_large(consented_api, site,
                                                                  settings):
    stored(consented_api)
    response = consented_api.client.get(f"/api/v1/subjects/{USER}/export",
                                        **bearer(consented_api))
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    export = json.loads(b"".join(response.streaming_content))
    assert export["counts"]["tracking.Event"] == 1
    (event,) = export["tables"]["tracking.Event"]
    assert event["subject"] in hashes_of(site, anon_id="a_visitor1")
    assert export["counts"]["tracking.ConsentReceipt"] == 1
    assert export["counts"]["tracking.RawBatch.events"] == 1
    assert PersonalDataAccess.objects.filter(action="download_export").count() == 1

    settings.RECSITE = {**settings.RECSITE, "EXPORT_ZIP_BYTES": 100}
    response = consented_api.client.get(f"/api/v1/subjects/{USER}/export?type=user",
                                        **bearer(consented_api))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    inner = json.loads(archive.read(archive.namelist()[0]))
    assert inner["counts"]["tracking.Event"] == 1


@pytest.mark.parametrize(("method", "path", "status", "field"), [
    ("delete", "/api/v1/subjects/customer-77?type=robot", 400, "type"),
    ("delete", "/api/v1/subjects/null", 400, "id"),
    ("get", "/api/v1/subjects/customer-77/export?request=not-a-uuid", 400, "request"),
    ("get", "/api/v1/subjects/customer-77/export?request=6f1c2b9e-0000-4000-8000-000000000000",
     404, "request"),
    ("get", "/api/v1/subject-requests/6f1c2b9e-0000-4000-8000-000000000000", 404, "request_id"),
    ("get", "/api/v1/subject-requests/nope", 400, "request_id"),
])
def test_bad_input_is_a_clear_4xx(api, method, path, status, field):
    response = getattr(api.client, method)(path, **bearer(api))
    assert response.status_code == status, response.content
    assert response.json()["field"] == field and response.json()["error"]


def test_no_key_or_a_wrong_key_is_401_and_another_sites_request_is_not_found(api, site):
    assert api.client.delete(f"/api/v1/subjects/{USER}").status_code == 401
    assert api.client.delete(f"/api/v1/subjects/{USER}",
                             **bearer(api, "sk_live_wrong")).status_code == 401
    from tracking.services import site_create

    other = site_create(name="Other", origins=[])
    made = subject_request_create(site=other.site, kind="erase", id_type="user", raw_id=USER,
                                  requested_by="test", enqueue=False)
    response = api.client.get(f"/api/v1/subject-requests/{made.request.pk}", **bearer(api))
    assert response.status_code == 404
    assert api.client.post(f"/api/v1/subjects/{USER}", **bearer(api)).status_code == 405


def test_erase_subject_command_prints_the_proof_and_can_export_first(consented_api, site,
                                                                     tmp_path, capsys):
    stored(consented_api)
    export_to = tmp_path / "copy.json"
    call_command("erase_subject", USER, "--export", str(export_to), "--json")
    proof = json.loads(capsys.readouterr().out)
    assert proof["status"] == "done" and proof["counts"]["tracking.Event"] == 1
    assert json.loads(export_to.read_text())["counts"]["tracking.Event"] == 1
    assert not Event.objects.exists() and not RawBatch.objects.exists()
    with pytest.raises(CommandError, match="is not a user id"):
        call_command("erase_subject", "null")
    with pytest.raises(CommandError, match="names no site"):
        call_command("erase_subject", USER, "--site", "pk_live_nope")


def test_after_a_key_rotation_erasure_still_finds_rows_under_the_old_key(consented_api, site):
    stored(consented_api)
    old = subject_hashes(site=site, id_type="user", raw_id=USER)
    subject_key_rotate(site=site)
    site.refresh_from_db()
    new = subject_hashes(site=site, id_type="user", raw_id=USER)
    assert new[0] != old[0] and new[1] == old[0]
    made = subject_request_create(site=site, kind="erase", id_type="user", raw_id=USER,
                                  requested_by="test", enqueue=False)
    done = subject_request_run(request_id=str(made.request.pk))
    assert done.counts["tracking.Event"] == 1
    assert not Event.objects.exists()
