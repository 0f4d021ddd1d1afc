"""Listening to tracking and to our own settings: what retires cached answers, and the
attribution and dismissals of new clean events."""

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from recommend import attribution
from recommend.caching import answer_cache
from recommend.models import Attribution, Dismissal, Experiment, ModelVersion, Placement, Variant
from recommend.services import model_version_create, subjects_erase
from tracking.conf import tracking_settings
from tracking.db import pk_in
from tracking.models import ConsentRecord, Event, Item, Site
from tracking.signals import events_cleaned, subjects_erased, subjects_exported

logger = logging.getLogger(__name__)


@receiver(events_cleaned, dispatch_uid="recommend.events_cleaned")
def on_events_cleaned(sender: Any, *, site_id: int, event_pks: list[int], **kwargs: Any) -> None:
    """New events: their subjects' cached answers go (the next call sees the events), and
    attributable events and dismissals are recorded.

    Never raises: the events are stored whatever happens here.
    """
    try:
        subjects = kwargs.get("subjects")
        if subjects is None:
            subjects = set()
            for subject, user_subject in Event.objects.filter(pk_in(event_pks)) \
                    .values_list("subject", "user_subject").distinct():
                subjects.add(subject)
                if user_subject:
                    subjects.add(user_subject)
        answer_cache.subjects_invalidate(site_id, subjects)
    except Exception:
        logger.exception("recommend: cache invalidation for %d events of site %s failed",
                         len(event_pks), site_id)
    try:
        attribution.dismissals_record(site_id=site_id, event_pks=event_pks)
        attribution.events_attribute(site_id=site_id, event_pks=event_pks)
    except Exception:
        logger.exception("recommend: attribution of %d events of site %s failed",
                         len(event_pks), site_id)


@receiver([post_save, post_delete], sender=Placement, dispatch_uid="recommend.placement")
@receiver([post_save, post_delete], sender=Experiment, dispatch_uid="recommend.experiment")
@receiver([post_save, post_delete], sender=Item, dispatch_uid="recommend.item")
def on_site_setting_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A placement, an experiment or an item changed: every cached answer of the site goes."""
    site_id = instance.site_id
    transaction.on_commit(lambda: answer_cache.site_invalidate(site_id))


@receiver([post_save, post_delete], sender=Variant, dispatch_uid="recommend.variant")
def on_variant_changed(sender: Any, instance: Variant, **kwargs: Any) -> None:
    site_id = Experiment.objects.filter(pk=instance.experiment_id) \
        .values_list("site_id", flat=True).first()
    if site_id is not None:
        transaction.on_commit(lambda: answer_cache.site_invalidate(site_id))


@receiver(post_save, sender=ConsentRecord, dispatch_uid="recommend.consent")
def on_consent_changed(sender: Any, instance: ConsentRecord, **kwargs: Any) -> None:
    """A new consent choice: the subject's answers were made under the old one."""
    site_id, subject = instance.site_id, instance.subject
    transaction.on_commit(lambda: answer_cache.subjects_invalidate(site_id, {subject}))


# --- privacy: erasure and export of data subjects (tracking.privacy) -----------------------

@receiver(subjects_erased, dispatch_uid="recommend.subjects_erased")
def on_subjects_erased(sender: Any, *, site: Site, subjects: frozenset[str],
                       **kwargs: Any) -> dict[str, int]:
    """Erase the subjects' dismissals, attribution hashes and cached answers, and queue a new
    model version so that none trained from now on has learnt from their events."""
    erased = subjects_erase(site=site, subjects=list(subjects))
    return {"recommend.Dismissal": erased["dismissals"],
            "recommend.Attribution (subject blanked)": erased["attributions_anonymised"],
            "recommend.ModelVersion (retrain queued)": retrain_after_erasure(site=site)}


def retrain_after_erasure(*, site: Site) -> int:
    """Queue a model version to train ERASURE_RETRAIN_SECONDS from now (one already queued
    trains later than this erasure anyway); returns 1 if one was queued. Model artifacts
    hold item-to-item arrays only, no row per subject: the next version simply no longer
    learns from the erased events."""
    if not ModelVersion.objects.filter(site=site, status=ModelVersion.Status.READY).exists():
        return 0
    if ModelVersion.objects.filter(site=site, status=ModelVersion.Status.QUEUED).exists():
        return 0
    delay = tracking_settings.ERASURE_RETRAIN_SECONDS
    version = model_version_create(site=site)
    due = timezone.now() + timedelta(seconds=delay)
    ModelVersion.objects.filter(pk=version.pk).update(stage=f"after erasure, {due:%H:%M} UTC")
    transaction.on_commit(lambda: _train_later(version.pk, delay))
    return 1


def _train_later(version_id: int, delay: int) -> None:
    from recommend.tasks import train_version  # tasks call services, not the other way

    train_version.apply_async((version_id,), countdown=delay)


@receiver(subjects_exported, dispatch_uid="recommend.subjects_exported")
def on_subjects_exported(sender: Any, *, site: Site, subjects: frozenset[str],
                         **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """The subjects' dismissals and attributed events (recommendations they saw and used)."""
    return {
        "recommend.Dismissal": list(Dismissal.objects.filter(site=site, subject__in=subjects)
                                    .order_by("pk").values()),
        "recommend.Attribution": list(Attribution.objects.filter(site=site,
                                                                 subject__in=subjects)
                                      .order_by("pk").values()),
    }
