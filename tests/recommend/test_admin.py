"""Admin of recommend: versions with progress and metrics, "Train now" on sites."""

import pytest
from django.urls import reverse

from recommend import services, serving
from recommend.models import ModelVersion
from tests.recommend.test_training import behaviour

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models")}
    serving.loaded_models_clear()
    yield
    serving.loaded_models_clear()


def test_versions_list_shows_progress_and_metrics(admin_client, site):
    behaviour(site)
    version = services.site_train(site=site)
    training = ModelVersion.objects.create(site=site, status="training", progress=0.42,
                                           stage="fitting")
    page = admin_client.get(reverse("admin:recommend_modelversion_changelist")).content.decode()
    assert "42 %" in page and "fitting" in page
    assert f"{version.metrics['ndcg@20']:.4f}" in page
    sites = admin_client.get(reverse("admin:recommend_trainingsite_changelist")).content.decode()
    assert f"v{version.pk} (" in sites and f"v{training.pk} training: 42 %" in sites


def test_train_now_action_trains_a_new_version(admin_client, site,
                                               django_capture_on_commit_callbacks):
    behaviour(site)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:recommend_trainingsite_changelist"),
                                     {"action": "train_now", "_selected_action": [site.pk]})
    assert response.status_code == 302
    version = ModelVersion.objects.get(site=site)
    assert version.status == "ready" and version.is_active  # eager tasks in tests


def test_activate_action_refuses_a_failed_version(admin_client, site):
    behaviour(site)
    ready = services.site_train(site=site)
    failed = ModelVersion.objects.create(site=site, status="failed")
    admin_client.post(reverse("admin:recommend_modelversion_changelist"),
                      {"action": "activate", "_selected_action": [failed.pk]}, follow=True)
    ready.refresh_from_db()
    assert ready.is_active and not ModelVersion.objects.get(pk=failed.pk).is_active
