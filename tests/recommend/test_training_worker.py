"""Training through a real Celery worker process (real Redis and PostgreSQL)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommend import services, serving, tasks
from recommend.models import ModelVersion
from tests.conftest import wait_for
from tests.recommend.test_training import behaviour

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model folder the worker (started after this, from this environment) shares."""
    path = tmp_path_factory.mktemp("models")
    before = os.environ.get("RECSITE_MODEL_DIR")
    os.environ["RECSITE_MODEL_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("RECSITE_MODEL_DIR", None)
    else:
        os.environ["RECSITE_MODEL_DIR"] = before


def test_the_worker_trains_a_queued_version_and_it_becomes_active(
        worker_model_dir, celery_worker, site, settings):
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(worker_model_dir)}
    serving.loaded_models_clear()
    behaviour(site)
    version = services.model_version_create(site=site)
    tasks.train_version.delay(version.pk)

    def status() -> str:
        return ModelVersion.objects.get(pk=version.pk).status

    assert wait_for(lambda: status() in ("ready", "failed"), timeout=60), status()
    version.refresh_from_db()
    assert version.status == "ready" and version.is_active, version.error
    assert (worker_model_dir / version.artifact).exists()
    loaded = serving.active_model(site_id=site.pk)  # this process loads what the worker wrote
    assert loaded is not None and loaded.version_id == version.pk
    serving.loaded_models_clear()
