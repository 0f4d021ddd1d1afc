"""Listening to tracking and to our own settings: what retires cached answers, and the
attribution and dismissals of new clean events."""

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from recommend import attribution
from recommend.caching import answer_cache
from recommend.models import Experiment, Placement, Variant
from tracking.models import ConsentRecord, Event, Item
from tracking.signals import events_cleaned

logger = logging.getLogger(__name__)


@receiver(events_cleaned, dispatch_uid="recommend.events_cleaned")
def on_events_cleaned(sender: Any, *, site_id: int, event_pks: list[int], **kwargs: Any) -> None:
    """New events: their subjects' cached answers go (the next call sees the events), and
    attributable events and dismissals are recorded.

    Never raises: the events are stored whatever happens here.
    """
    try:
        subjects = set()
        for subject, user_subject in Event.objects.filter(pk__in=event_pks) \
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
