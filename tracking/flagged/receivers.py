"""A data subject's flagged events go with an erasure and come with an export."""

from typing import Any

from django.dispatch import receiver

from tracking.flagged.models import FlaggedEvent
from tracking.signals import subjects_erased, subjects_exported


@receiver(subjects_erased, dispatch_uid="tracking.flagged.subjects_erased")
def on_subjects_erased(sender: Any, *, site: Any, subjects: frozenset[str],
                       **kwargs: Any) -> dict[str, int]:
    """Delete the subjects' flagged events; rows deleted."""
    deleted, _ = FlaggedEvent.objects.filter(site=site, subject__in=subjects).delete()
    return {"tracking_flagged.FlaggedEvent": deleted}


@receiver(subjects_exported, dispatch_uid="tracking.flagged.subjects_exported")
def on_subjects_exported(sender: Any, *, site: Any, subjects: frozenset[str],
                         **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """The subjects' flagged events, every column."""
    rows = FlaggedEvent.objects.filter(site=site, subject__in=subjects).order_by("pk").values()
    return {"tracking_flagged.FlaggedEvent": list(rows)}
