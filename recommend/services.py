"""Writes of the recommend app: train a model version from events, switch the active one."""

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from recommend import offline
from recommend.algorithms import Hybrid, Popularity
from recommend.algorithms.base import model_arrays
from recommend.attribution import attribution_report
from recommend.caching import answer_cache
from recommend.conf import recommend_settings
from recommend.datasets import Dataset
from recommend.evaluation import split_last_fraction_per_user
from recommend.experiments import thompson_weights
from recommend.models import Attribution, Dismissal, Experiment, ModelVersion
from recommend.selectors import TrainingData, training_data_read
from tracking.models import Site

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
HOLDOUT_USERS = 2000  # enough for a stable figure, bounded time on a big site


class TrainingError(Exception):
    """Training cannot proceed (e.g. no usable events); the version is marked failed."""


def model_version_create(*, site: Site, params: dict[str, Any] | None = None) -> ModelVersion:
    """A queued version of the site's model (train it with ``model_version_train``).

    Without ``params`` it keeps the active version's (so tuned blend weights persist).
    """
    if params is None:
        active = ModelVersion.objects.filter(site=site, is_active=True).first()
        params = dict(active.params) if active is not None else {}
    return ModelVersion.objects.create(site=site, params=params)


def site_train(*, site: Site, params: dict[str, Any] | None = None,
               progress: Progress | None = None) -> ModelVersion:
    """Create a version and train it now, in this process; returns it (ready or failed)."""
    version = model_version_create(site=site, params=params)
    return model_version_train(version_id=version.pk, progress=progress)


def model_version_train(*, version_id: int, progress: Progress | None = None) -> ModelVersion:
    """Train a queued version, save its artifact, make it active; safe to call twice.

    Only a queued version is trained (claimed with one conditional UPDATE), so a second
    call, or a second worker, returns the version as it is. A failure leaves the site's
    active version as it was and records the error on this one.
    """
    claimed = ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.QUEUED) \
        .update(status=ModelVersion.Status.TRAINING, started_at=timezone.now(),
                stage="reading events", progress=0.0)
    version = ModelVersion.objects.select_related("site").get(pk=version_id)
    if not claimed:
        return version
    reporter = _Reporter(version, progress)
    started = time.perf_counter()
    try:
        _train(version, reporter)
    except Exception as error:
        ModelVersion.objects.filter(pk=version.pk).update(
            status=ModelVersion.Status.FAILED, error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(), training_seconds=time.perf_counter() - started)
        if not isinstance(error, TrainingError):
            logger.exception("training model version %s failed", version.pk)
            raise
    else:
        # Ready and active in one transaction: a reader never sees a ready version that
        # is not active yet.
        with transaction.atomic():
            ModelVersion.objects.filter(pk=version.pk).update(
                status=ModelVersion.Status.READY,
                training_seconds=round(time.perf_counter() - started, 3))
            model_version_activate(version=ModelVersion.objects.get(pk=version.pk))
        artifacts_prune(site=version.site)
    version.refresh_from_db()
    return version


def _train(version: ModelVersion, reporter: "_Reporter") -> None:
    since = timezone.now() - timedelta(days=recommend_settings.TRAIN_WINDOW_DAYS)
    data = training_data_read(site=version.site, since=since,
                              weights=recommend_settings.EVENT_WEIGHTS,
                              progress=lambda n: reporter(0.0, f"reading events ({n:,})"))
    if data.n_events == 0:
        raise TrainingError("no events with an item in the training window")
    reporter(0.2, "measuring on held-out events")
    metrics = holdout_metrics(data, version.params) if recommend_settings.TRAIN_HOLDOUT else {}
    reporter(0.5, "fitting")
    model = Hybrid(**version.params).fit(
        data.matrix(), item_texts=data.item_texts, times=data.times(),
        progress=lambda done, total: reporter(0.5 + 0.4 * done / max(total, 1), "fitting"))
    reporter(0.92, "saving")
    path = artifact_write(version, model, data.item_ids)
    ModelVersion.objects.filter(pk=version.pk).update(
        progress=1.0, stage="done", metrics=metrics,
        params=model.get_params(), n_events=data.n_events, n_subjects=data.events.n_users,
        n_items=data.events.n_items, data_from=data.data_from, data_to=data.data_to,
        size_bytes=path.stat().st_size, finished_at=timezone.now(),
        artifact=str(path.relative_to(recommend_settings.MODEL_DIR)))


def site_weights_tune(*, site: Site, placement: str | None = None,
                      progress: Progress | None = None) -> tuple[dict[str, float], float,
                                                                 dict[str, Any]]:
    """Blend weights with the best NDCG@20 on the site's held-out latest events; the
    tuned weights, that NDCG, and the params a new version would take with them."""
    since = timezone.now() - timedelta(days=recommend_settings.TRAIN_WINDOW_DAYS)
    data = training_data_read(site=site, since=since, weights=recommend_settings.EVENT_WEIGHTS)
    if data.n_events == 0:
        raise TrainingError("no events with an item in the training window")
    fraction = recommend_settings.TRAIN_HOLDOUT or 0.1
    validation = split_last_fraction_per_user(data.events, fraction=fraction)
    users = offline.test_users(validation, max_users=HOLDOUT_USERS, seed=42)
    if users.size == 0:
        raise TrainingError("too few events per subject to hold any out")
    dataset = Dataset(name=site.name, events=data.events, item_texts=data.item_texts,
                              item_ids=data.item_ids)
    report = None if progress is None else (lambda message: progress(1.0, message))
    weights, score = offline.weights_tune(dataset, validation, users=users, progress=report)
    active = ModelVersion.objects.filter(site=site, is_active=True).first()
    params = dict(active.params) if active is not None else {}
    if placement:
        params["placements"] = {**params.get("placements", {}), placement: weights}
    else:
        params["weights"] = weights
    return weights, score, params


def holdout_metrics(data: TrainingData, params: dict[str, Any]) -> dict[str, Any]:
    """Recall/NDCG/HitRate/coverage@20 of the hybrid and of popularity on each subject's
    latest events (TRAIN_HOLDOUT of them), fitted on the rest."""
    split = split_last_fraction_per_user(data.events, fraction=recommend_settings.TRAIN_HOLDOUT)
    users = offline.test_users(split, max_users=HOLDOUT_USERS, seed=42)
    if users.size == 0:
        return {"test_users": 0}
    assert split.train_times is not None
    inputs = offline.EvalInput(train=split.train, item_texts=data.item_texts,
                               train_times=split.train_times,
                               recent=offline.recent_rows(split.train, split.train_times, last=5))
    hybrid = offline.ModelSpec(
        "hybrid", lambda: Hybrid(**params),
        fit=lambda m, d: m.fit(d.train, item_texts=d.item_texts),
        recommend=lambda m, d, u, n: m.recommend(d.train[u], n, recent_rows=d.recent[u])[0])
    ours = offline.model_evaluate(hybrid, inputs, split.test, users, ks=(20,))
    baseline = offline.model_evaluate(offline.ModelSpec("popularity", Popularity), inputs,
                                      split.test, users, ks=(20,))
    keys = ("recall@20", "ndcg@20", "hitrate@20", "coverage@20")
    return {"protocol": split.description, "test_users": int(users.size),
            **{key: round(ours[key], 5) for key in keys},
            **{f"popularity_{key}": round(baseline[key], 5) for key in keys}}


def artifact_write(version: ModelVersion, model: Hybrid, item_ids: list[str]) -> Path:
    """Write the model and its item ids to MODEL_DIR/site_<id>/v<id>.npz (atomically)."""
    folder = recommend_settings.MODEL_DIR / f"site_{version.site_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{version.pk}.npz"
    partial = folder / f".v{version.pk}.npz.partial"
    with partial.open("wb") as handle:
        np.savez(handle, item_ids=np.array(item_ids, dtype=str),
                 **model_arrays(model, prefix="model/"))
    os.replace(partial, path)  # readers never see half a file
    return path


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> None:
    """Make a ready version the site's only active one, in one transaction."""
    if version.status != ModelVersion.Status.READY:
        raise ValueError(f"version {version.pk} is {version.status}, not ready")
    Site.objects.select_for_update().filter(pk=version.site_id).first()  # one switch at a time
    ModelVersion.objects.filter(site_id=version.site_id, is_active=True) \
        .exclude(pk=version.pk).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True,
                                                      activated_at=timezone.now())
    # Cached answers of the old version retire once the switch is committed.
    transaction.on_commit(lambda: answer_cache.site_invalidate(version.site_id))


def artifacts_prune(*, site: Site) -> int:
    """Delete artifact files of all but the KEEP_VERSIONS latest ready versions (and the
    active one); returns how many files went."""
    ready = ModelVersion.objects.filter(site=site, status=ModelVersion.Status.READY) \
        .exclude(artifact="").order_by("-created_at", "-id")
    old = [v for v in ready[recommend_settings.KEEP_VERSIONS:] if not v.is_active]
    for version in old:
        (recommend_settings.MODEL_DIR / version.artifact).unlink(missing_ok=True)
    ModelVersion.objects.filter(pk__in=[v.pk for v in old]).update(artifact="")
    return len(old)


@dataclass
class _Reporter:
    """Stores progress on the version (at most every half second) and tells the caller."""

    version: ModelVersion
    callback: Progress | None
    interval: float = 0.5
    last_write: float = 0.0

    def __call__(self, fraction: float, stage: str) -> None:
        if self.callback is not None:
            self.callback(fraction, stage)
        now = time.monotonic()
        if now - self.last_write >= self.interval:
            self.last_write = now
            ModelVersion.objects.filter(pk=self.version.pk).update(
                progress=round(fraction, 4), stage=stage[:40])


def experiment_rebalance(*, experiment: Experiment) -> dict[str, float]:
    """Thompson sampling: each variant's share becomes the probability that it has the best
    click-through rate (Beta posteriors of its clicks and impressions); returns the shares."""
    rows = {row.key[0]: row for row in attribution_report(
        site_id=experiment.site_id, by=("variant",), experiment_id=experiment.pk)}
    counts = {v.name: (rows[v.name].clicks, rows[v.name].impressions) if v.name in rows
              else (0, 0) for v in experiment.variants.all() if v.weight > 0}
    shares = thompson_weights(counts, seed=experiment.pk)
    experiment.bandit_weights = shares
    experiment.bandit_updated_at = timezone.now()
    experiment.save(update_fields=["bandit_weights", "bandit_updated_at"])
    return shares


def subjects_erase(*, site: Site, subjects: list[str]) -> dict[str, int]:
    """Erase what recommend keeps of these subjects: their dismissals, their cached answers,
    and their hash on attribution rows (kept without it, so the reports' counts hold)."""
    dismissals, _ = Dismissal.objects.filter(site=site, subject__in=subjects).delete()
    attributed = Attribution.objects.filter(site=site, subject__in=subjects).update(subject="")
    transaction.on_commit(lambda: answer_cache.subjects_invalidate(site.pk, set(subjects)))
    return {"dismissals": dismissals, "attributions_anonymised": attributed}
