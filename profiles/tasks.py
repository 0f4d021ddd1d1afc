"""Celery tasks of profiles: thin wrappers that take ids and call services."""

from celery import shared_task

from profiles import services
from tracking.models import Site


@shared_task(name="profiles.apply_events", acks_late=True,
             autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def apply_events(site_id: int, event_pks: list[int]) -> int:
    """Fold a batch of clean events into profiles and segments; returns rows folded."""
    return services.profile_batch_process(site_id=site_id, event_pks=event_pks)


@shared_task(name="profiles.recompute", acks_late=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=3)
def recompute(site_id: int) -> int:
    """Rebuild a site's profiles from its events; returns how many profiles."""
    return services.profiles_recompute(site_id=site_id).profiles


@shared_task(name="profiles.rescore", acks_late=True)
def rescore(site_id: int) -> int:
    """New RFM cut points and stages, then every rule segment; returns profiles changed."""
    changed = services.profiles_rescore(site_id=site_id)
    services.segments_sweep(site_id=site_id)
    return changed


@shared_task(name="profiles.sweep_segments", acks_late=True)
def sweep_segments(site_id: int) -> int:
    """Time-based entries and exits of rule segments, then sizes; returns changes."""
    return services.segments_sweep(site_id=site_id, time_only=True)


@shared_task(name="profiles.refit_clusters", acks_late=True)
def refit_clusters(site_id: int) -> int:
    """Refit the K-Means segments of a site; returns the chosen k (0: too few profiles)."""
    return services.clusters_refit(site_id=site_id)


@shared_task(name="profiles.evaluate_segment", acks_late=True)
def evaluate_segment(segment_id: int) -> int:
    """Evaluate one rule segment over its whole site (after an edit); returns changes."""
    return services.segment_evaluate_by_id(segment_id=segment_id)


@shared_task(name="profiles.rebuild", acks_late=True)
def rebuild(site_id: int) -> int:
    """Recompute profiles, then rule segments and clusters; returns how many profiles."""
    return services.profiles_rebuild(site_id=site_id).profiles


_PER_SITE = {"recompute": recompute, "rescore": rescore, "sweep_segments": sweep_segments,
             "refit_clusters": refit_clusters}


@shared_task(name="profiles.for_each_site", acks_late=True)
def for_each_site(task: str) -> int:
    """Fan a periodic task out, one message per active site; returns how many sites."""
    site_ids = list(Site.objects.filter(is_active=True).values_list("pk", flat=True))
    for site_id in site_ids:
        _PER_SITE[task].delay(site_id)
    return len(site_ids)
