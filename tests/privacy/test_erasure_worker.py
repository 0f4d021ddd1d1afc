"""One subject with data in every table, made through the real pipeline and worker, is
exported (every row of theirs is in it) and erased (no row, no Redis entry names them),
while another subject stays whole; the next model version no longer learns from them."""

import io
import json
import os
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.apps import apps

from profiles.models import Condition, IdentityLink, Membership, Profile, Segment
from recommend import services, serving
from recommend.models import Attribution, Dismissal, ModelVersion
from tests.conftest import iso, make_event, wait_for
from tests.privacy.conftest import hashes_of, redis_entries_naming, rows_naming
from tests.recommend.conftest import shop_catalog
from tests.recommend.test_attribution import journey
from tests.recommend.test_training import behaviour
from tracking.models import DataSubjectRequest, Event, PersonalDataAccess

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ANON, USER = "a_7f3c9e21-erase-me", "customer-4411-erase-me"
OTHER = "a_2b8d0c55-stays"
EXPECTED_TABLES = {"tracking.Event", "tracking.RawBatch", "tracking.ConsentReceipt",
                   "tracking.ConsentRecord", "tracking.DataSubjectRequest",
                   "tracking.PersonalDataAccess", "profiles.Profile", "profiles.IdentityLink",
                   "profiles.Membership", "recommend.Dismissal", "recommend.Attribution"}


@pytest.fixture(scope="module")
def worker_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Folders the worker (started after this, from this environment) shares with the test,
    and a retrain one second after an erasure."""
    env = {"RECSITE_MODEL_DIR": str(tmp_path_factory.mktemp("models")),
           "RECSITE_EXPORT_DIR": str(tmp_path_factory.mktemp("exports")),
           "RECSITE_ERASURE_RETRAIN_SECONDS": "1"}
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def spaced(events: list[dict], *, start: datetime) -> list[dict]:
    """Events two seconds apart (a person's pace; a burst is dropped as a bot's)."""
    return [{**event, "ts": iso(start + timedelta(seconds=2 * i))} for i, event in
            enumerate(events)]


def collected(api, events: list[dict]) -> None:
    """Collect these events; every one must be accepted."""
    response = api.collect(events)
    assert response.status_code == 202 and response.json()["rejected"] == [], response.content


def bearer(api) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {api.secret_key}"}


def test_a_subject_in_every_table_is_exported_whole_then_erased_without_a_trace(
        worker_dirs, celery_worker, site, api, settings):
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": worker_dirs["RECSITE_MODEL_DIR"],
                        "EXPORT_DIR": worker_dirs["RECSITE_EXPORT_DIR"]}
    serving.loaded_models_clear()
    shop_catalog(site)
    behaviour(site)  # forty other shoppers to learn from
    segment = Segment.objects.create(site=site, name="viewers", slug="viewers")
    Condition.objects.create(segment=segment, kind="events", event_name="view_item")
    services.site_train(site=site)

    # Consent, as the banner sends it: the person's browser while logged in, and another one.
    assert api.consent(ANON, personalization=True, user_id=USER).status_code == 201
    assert api.consent(OTHER).status_code == 201
    start = datetime.now(UTC) - timedelta(minutes=5)
    browsing = [make_event(anon_id=ANON, items=[{"item_id": "sku-0-1"}]),
                make_event(anon_id=ANON, user_id=USER, items=[{"item_id": "sku-0-2"}]),
                make_event(name="not_interested", anon_id=ANON, user_id=USER,
                           items=[{"item_id": "sku-1-1"}])]
    collected(api, spaced(browsing, start=start))
    collected(api, spaced([make_event(anon_id=OTHER, items=[{"item_id": "sku-2-1"}])],
                          start=start))
    hashes = hashes_of(site, anon_id=ANON, user_id=USER)
    anon_hash = hashes_of(site, anon_id=ANON).pop()
    assert wait_for(lambda: Membership.objects.filter(subject__in=hashes).exists()
                    and IdentityLink.objects.filter(anon_subject=anon_hash).exists()
                    and Dismissal.objects.filter(subject__in=hashes).exists(), timeout=60)

    # A recommendation served to them, seen, clicked and bought from.
    answer = api.client.get("/api/v1/recommendations", {
        "site": site.public_key, "placement": "home", "limit": 4, "anon_id": ANON})
    assert answer.status_code == 200, answer.content
    shown = answer.json()
    items = [item["item_id"] for item in shown["items"]]
    assert items
    later = start + timedelta(minutes=1)
    collected(api, spaced(journey(shown["rec_token"], items, anon=ANON), start=later))
    assert wait_for(lambda: Attribution.objects.filter(subject__in=hashes).count() >= 3,
                    timeout=60)
    before = services.site_train(site=site)  # a model that learnt from them
    other = hashes_of(site, anon_id=OTHER)
    assert wait_for(lambda: Profile.objects.filter(subject__in=other).exists(), timeout=60)

    held = rows_naming(hashes)
    assert EXPECTED_TABLES - {"tracking.DataSubjectRequest", "tracking.PersonalDataAccess"} \
        <= held.keys(), sorted(held)
    assert rows_naming({ANON, USER}) == {}, "a raw id was stored in clear"
    others_rows = rows_naming(other)

    # Export: every row that names them is in it.
    response = api.client.get(f"/api/v1/subjects/{USER}/export", **bearer(api))
    for _ in range(30):
        if response.status_code != 202:
            break
        response = api.client.get(response["Location"], **bearer(api))
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content)
    if response["Content-Type"] == "application/zip":
        body = zipfile.ZipFile(io.BytesIO(body)).read(zipfile.ZipFile(io.BytesIO(body))
                                                       .namelist()[0])
    export = json.loads(body)
    held = rows_naming(hashes)  # now with the export request and its audit entries
    assert held.keys() >= EXPECTED_TABLES
    held["tracking.PersonalDataAccess"] -= set(PersonalDataAccess.objects.filter(
        action="download_export").values_list("pk", flat=True))  # logged after the export
    for label, pks in held.items():
        if label == "tracking.RawBatch":
            exported = {row["batch_id"] for row in export["tables"]["tracking.RawBatch.events"]}
        else:
            pk = apps.get_model(label)._meta.pk.attname
            exported = {row[pk] for row in export["tables"].get(label, [])}
        assert {str(p) for p in pks} <= {str(p) for p in exported}, label
    export_file = Path(worker_dirs["RECSITE_EXPORT_DIR"]) / DataSubjectRequest.objects.get(
        kind="export").export_file
    assert export_file.is_file()

    # Erasure through the API, carried out by the worker.
    events_held = Event.objects.filter(subject__in=hashes).count()
    dismissals_held = Dismissal.objects.filter(subject__in=hashes).count()
    receipts_held = len(held["tracking.ConsentReceipt"])
    response = api.client.delete(f"/api/v1/subjects/{USER}", **bearer(api))
    assert response.status_code == 202, response.content
    status_url = response["Location"]

    def proof() -> dict:
        return api.client.get(status_url, **bearer(api)).json()

    assert wait_for(lambda: proof()["status"] == "done", timeout=60), proof()
    counts = proof()["counts"]
    assert counts["tracking.Event"] == events_held > 0
    assert counts["profiles.Profile"] >= 1 and counts["profiles.Membership"] >= 1
    assert counts["recommend.Dismissal"] == dismissals_held > 0, counts
    assert counts["tracking.ConsentReceipt"] == receipts_held > 0, counts

    assert rows_naming(hashes) == {}
    assert redis_entries_naming(hashes) == []
    assert not export_file.exists()
    assert rows_naming(other) == others_rows  # the other visitor is untouched
    assert DataSubjectRequest.objects.filter(kind="erase", status="done", subject="").count() == 1

    # The next model version, queued by the erasure, trains without them.
    def retrained() -> ModelVersion | None:
        return ModelVersion.objects.filter(site=site, pk__gt=before.pk, status="ready").first()

    assert wait_for(lambda: retrained() is not None, timeout=60)
    assert retrained().n_subjects == before.n_subjects - 1
    serving.loaded_models_clear()
