"""Celery tasks of recommend: thin wrappers that take ids and call services."""

from celery import shared_task

from recommend import services
from recommend.models import Experiment, ModelVersion
from tracking.models import Site


@shared_task(name="recommend.train_version", acks_late=True)
def train_version(version_id: int) -> str:
    """Train a queued model version (a no-op for any other); returns its final status."""
    return services.model_version_train(version_id=version_id).status


@shared_task(name="recommend.train_all")
def train_all() -> int:
    """Queue a new model version for every active site; returns how many were queued."""
    queued = 0
    for site in Site.objects.filter(is_active=True).only("pk"):
        if ModelVersion.objects.filter(site=site, status__in=[
                ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING]).exists():
            continue  # one training per site at a time
        version = services.model_version_create(site=site)
        train_version.delay(version.pk)
        queued += 1
    return queued


@shared_task(name="recommend.rebalance_bandits")
def rebalance_bandits() -> int:
    """New Thompson-sampling shares for every active bandit experiment; returns how many."""
    experiments = Experiment.objects.filter(is_active=True, allocation="thompson")
    for experiment in experiments:
        services.experiment_rebalance(experiment=experiment)
    return len(experiments)
