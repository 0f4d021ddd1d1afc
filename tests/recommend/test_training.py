"""Training as a service: versions from events, atomic switch, failures, serving, catalog."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import sparse

from recommend import services, serving, tasks
from recommend.conf import recommend_settings
from recommend.models import ModelVersion
from tracking.models import Event, Item, Site

pytestmark = pytest.mark.django_db

# Four groups of five items; each subject stays in one group (a learnable structure).
GROUPS = [[f"sku-{g}-{i}" for i in range(5)] for g in range(4)]
WORDS = ["oak table", "brass lamp", "wool blanket", "steel chair"]


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path: Path) -> Path:
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models")}
    serving.loaded_models_clear()
    yield tmp_path / "models"
    serving.loaded_models_clear()


def catalog(site: Site) -> None:
    Item.objects.bulk_create([
        Item(site=site, external_id=item, title=f"{WORDS[g]} model {i}", category=WORDS[g])
        for g, group in enumerate(GROUPS) for i, item in enumerate(group)])


def behaviour(site: Site, *, subjects: int = 40, days_ago: float = 1.0,
              name: str = "view_item") -> int:
    """Each subject views four items of their group, one hour apart; returns events made."""
    rng = np.random.default_rng(len(Event.objects.filter(site=site)) + subjects)
    start = datetime.now(UTC) - timedelta(days=days_ago)
    rows = []
    for s in range(subjects):
        group = GROUPS[s % 4]
        for step, item in enumerate(rng.choice(group, 4, replace=False)):
            rows.append(Event(site=site, event_id=uuid.uuid4(), subject=f"subj{s:04d}",
                              session=f"sess{s}", name=name, item_id=str(item),
                              ts=start + timedelta(hours=step), source="import"))
    Event.objects.bulk_create(rows)
    return len(rows)


def row(version: serving.LoadedModel, items: list[str]) -> sparse.csr_matrix:
    indices = sorted(version.item_index[item] for item in items)
    return sparse.csr_matrix((np.ones(len(indices), dtype=np.float32),
                              (np.zeros(len(indices), dtype=int), indices)),
                             shape=(1, version.model.n_items_))


def test_training_makes_an_active_version_with_metrics_and_an_artifact(site, model_dir):
    catalog(site)
    made = behaviour(site)
    stages = []
    version = services.site_train(site=site, progress=lambda f, stage: stages.append(f))
    assert version.status == ModelVersion.Status.READY and version.is_active
    assert version.n_events == made and version.n_subjects == 40 and version.n_items == 20
    assert version.progress == 1.0 and stages[-1] >= 0.9 and stages == sorted(stages)
    assert (model_dir / version.artifact).stat().st_size == version.size_bytes > 0
    assert version.training_seconds > 0 and version.data_from < version.data_to
    assert version.params["knn"] == {} and "weights" in version.params
    metrics = version.metrics
    assert metrics["test_users"] == 40
    # Subjects stick to a group: the model must beat popularity on held-out views.
    assert metrics["ndcg@20"] > metrics["popularity_ndcg@20"]
    loaded = serving.active_model(site_id=site.pk)
    assert loaded is not None and loaded.version_id == version.pk
    ids, _ = loaded.model.recommend(row(loaded, GROUPS[2][:2]), n=3)
    assert {loaded.item_ids[i] for i in ids[0]} <= set(GROUPS[2])


def test_only_weighted_events_of_the_window_are_read(site, settings):
    behaviour(site, subjects=8)
    behaviour(site, subjects=8, name="page_view")  # not a weighted name
    behaviour(site, subjects=8, days_ago=400)  # outside the window
    settings.RECSITE = {**settings.RECSITE, "TRAIN_WINDOW_DAYS": 30, "TRAIN_HOLDOUT": 0}
    version = services.site_train(site=site)
    assert version.n_events == 32 and version.metrics == {}


def test_retraining_switches_the_active_version_and_prunes_old_files(site, settings,
                                                                      model_dir):
    settings.RECSITE = {**settings.RECSITE, "KEEP_VERSIONS": 1}
    behaviour(site)
    first = services.site_train(site=site)
    behaviour(site, subjects=12)
    second = services.site_train(site=site)
    first.refresh_from_db()
    assert second.is_active and not first.is_active
    assert ModelVersion.objects.filter(site=site, is_active=True).count() == 1
    assert first.artifact == "" and not (model_dir / f"site_{site.pk}" / f"v{first.pk}.npz"
                                         ).exists()
    assert (model_dir / second.artifact).exists()


def test_a_failed_training_keeps_the_previous_version_active(site):
    behaviour(site)
    good = services.site_train(site=site)
    Event.objects.filter(site=site).delete()
    failed = services.site_train(site=site)
    good.refresh_from_db()
    assert failed.status == ModelVersion.Status.FAILED and not failed.is_active
    assert "no events" in failed.error
    assert good.is_active
    with pytest.raises(ValueError, match="not ready"):
        services.model_version_activate(version=failed)


def test_training_a_version_twice_trains_it_once(site):
    behaviour(site)
    version = services.model_version_create(site=site)
    assert tasks.train_version(version.pk) == "ready"
    trained = ModelVersion.objects.get(pk=version.pk)
    assert tasks.train_version(version.pk) == "ready"  # a redelivered message
    again = ModelVersion.objects.get(pk=version.pk)
    assert again.finished_at == trained.finished_at and again.artifact == trained.artifact


def test_serving_keeps_the_previous_model_until_the_new_one_loads(site, model_dir):
    behaviour(site)
    first = services.site_train(site=site)
    assert serving.active_model(site_id=site.pk).version_id == first.pk
    behaviour(site, subjects=8)
    second = services.site_train(site=site)
    (model_dir / second.artifact).write_bytes(b"truncated")  # a file that cannot load
    assert serving.active_model(site_id=site.pk).version_id == first.pk
    third = services.site_train(site=site)
    assert serving.active_model(site_id=site.pk).version_id == third.pk


def test_new_catalog_items_are_recommendable_without_retraining(site, settings):
    catalog(site)
    behaviour(site)
    services.site_train(site=site)
    settings.RECSITE = {**settings.RECSITE, "CATALOG_CHECK_SECONDS": 0}
    loaded = serving.active_model(site_id=site.pk)
    assert "sku-new" not in loaded.item_index
    Item.objects.create(site=site, external_id="sku-new", title="brass lamp deluxe",
                        category="brass lamp")
    loaded = serving.active_model(site_id=site.pk)
    assert "sku-new" in loaded.item_index
    ids, _ = loaded.model.recommend(row(loaded, GROUPS[1][:3]), n=loaded.model.n_items_)
    shown = [loaded.item_ids[i] for i in ids[0] if i >= 0]
    assert "sku-new" in shown  # by its text: no event has it yet
    assert recommend_settings.CATALOG_CHECK_SECONDS == 0


def test_train_command_with_progress_and_errors(site, capsys):
    behaviour(site)
    call_command("train", "--site", site.public_key)
    out = capsys.readouterr()
    assert f"{site.name}: version" in out.out and "active" in out.out
    assert "%" in out.err  # the progress bar
    with pytest.raises(CommandError, match="no site with the public key or name 'nope'"):
        call_command("train", "--site", "nope")
    Event.objects.all().delete()
    with pytest.raises(CommandError, match="1 of 1 trainings failed"):
        call_command("train", verbosity=0)


def test_train_all_queues_one_version_per_active_site(site):
    behaviour(site)
    Site.objects.create(name="Closed", public_key="pk_closed", secret_key_hash="x" * 64,
                        secret_key_hint="sk", subject_salt="s", is_active=False)
    assert tasks.train_all() == 1  # eager in tests: trained at once
    assert ModelVersion.objects.get(site=site).status == ModelVersion.Status.READY


def test_tune_a_site_then_train_with_the_weights_and_keep_them(site, tmp_path):
    catalog(site)
    behaviour(site)
    out = tmp_path / "tune.json"
    call_command("tune", "--site", site.public_key, "--placement", "product", "--train",
                 "--json", str(out), verbosity=0)
    result = json.loads(out.read_text())
    assert set(result["weights"]) == {"knn", "content", "popularity", "session"}
    version = ModelVersion.objects.get(pk=result["version"])
    assert version.is_active and version.params["placements"]["product"] == result["weights"]
    behaviour(site, subjects=8)
    later = services.site_train(site=site)  # a scheduled retrain keeps the tuned weights
    assert later.params["placements"] == version.params["placements"]
    with pytest.raises(CommandError, match="either --site, or --format and --events"):
        call_command("tune", verbosity=0)


def test_tune_on_a_data_set_file(tmp_path):
    data = Path(__file__).resolve().parent.parent / "data" / "movielens"
    call_command("tune", "--format", "movielens", "--events", str(data),
                 "--json", str(tmp_path / "t.json"), verbosity=0)
    result = json.loads((tmp_path / "t.json").read_text())
    assert result["validation"].startswith("each user's last")
    assert 0 <= result["ndcg@20"] <= 1 and result["weights"]["knn"] == 1.0


def test_recommendations_for_a_subject_follow_their_group_and_their_last_item(site):
    catalog(site)
    behaviour(site)
    services.site_train(site=site)
    # subj0001 is in group 1: their unseen group items come first.
    history = set(Event.objects.filter(site=site, subject="subj0001")
                  .values_list("item_id", flat=True))
    recommended = serving.recommendations_for_subject(site_id=site.pk, subject="subj0001", n=1)
    assert len(recommended) == 1 and recommended[0].item_id in set(GROUPS[1]) - history
    # A visitor the model has never seen, who just viewed an item of group 3.
    Event.objects.create(site=site, event_id=uuid.uuid4(), subject="newcomer", session="s",
                         name="view_item", item_id=GROUPS[3][0], ts=datetime.now(UTC),
                         source="browser")
    fresh = serving.recommendations_for_subject(site_id=site.pk, subject="newcomer", n=3,
                                                exclude=[GROUPS[3][1]])
    shown = [r.item_id for r in fresh]
    assert shown and set(shown) <= set(GROUPS[3][2:]) and GROUPS[3][0] not in shown
    assert serving.recommendations_for_subject(site_id=site.pk + 999, subject="x") == []
