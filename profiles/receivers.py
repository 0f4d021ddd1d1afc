"""Listening to tracking: new clean events are folded into profiles by a task."""

import logging
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from django.dispatch import receiver

from profiles.models import IdentityLink, Membership, Profile
from profiles.segmenting import cache_key
from profiles.services import profile_erase
from tracking.signals import events_cleaned, subject_aliases, subjects_erased, subjects_exported

logger = logging.getLogger(__name__)


@receiver(events_cleaned, dispatch_uid="profiles.events_cleaned")
def on_events_cleaned(sender: Any, *, site_id: int, event_pks: list[int], **kwargs: Any) -> None:
    """Enqueue the profile update of this batch (the signal comes after its commit).

    Never raises: the events are stored whatever happens here, and the nightly
    recompute folds in any batch whose update was lost.
    """
    from profiles.tasks import apply_events  # tasks call services, not the other way

    try:
        apply_events.delay(site_id, list(event_pks))
    except Exception:
        logger.exception("profiles: the update of %d events of site %s failed; the next "
                         "recompute will include them", len(event_pks), site_id)


# --- privacy: erasure, export and aliases of data subjects (tracking.privacy) --------------

@receiver(subject_aliases, dispatch_uid="profiles.subject_aliases")
def on_subject_aliases(sender: Any, *, site: Any, subjects: frozenset[str],
                       **kwargs: Any) -> set[str]:
    """The anonymous subjects that logged in as one of these users."""
    return set(IdentityLink.objects.filter(site=site, user_subject__in=subjects)
               .values_list("anon_subject", flat=True))


@receiver(subjects_erased, dispatch_uid="profiles.subjects_erased")
def on_subjects_erased(sender: Any, *, site: Any, subjects: frozenset[str],
                       **kwargs: Any) -> dict[str, int]:
    """Delete the subjects' profiles, login links and memberships; rows per table."""
    links = IdentityLink.objects.filter(site=site).filter(
        Q(anon_subject__in=subjects) | Q(user_subject__in=subjects))
    owners = set(subjects) | set(links.filter(anon_subject__in=subjects)
                                 .values_list("user_subject", flat=True))
    counts = {"profiles.IdentityLink": links.count(),
              "profiles.Membership": Membership.objects.filter(
                  site=site, subject__in=owners).count()}
    counts["profiles.Profile"] = profile_erase(site=site, subjects=subjects)
    cache.delete_many([cache_key(site.pk, subject) for subject in owners])
    return counts


@receiver(subjects_exported, dispatch_uid="profiles.subjects_exported")
def on_subjects_exported(sender: Any, *, site: Any, subjects: frozenset[str],
                         **kwargs: Any) -> dict[str, list[dict[str, Any]]]:
    """Every profiles row about these subjects (memberships with their segment's name)."""
    def rows(queryset: Any, *extra: str) -> list[dict[str, Any]]:
        fields = [f.attname for f in queryset.model._meta.concrete_fields]
        return list(queryset.order_by("pk").values(*fields, *extra))

    return {
        "profiles.Profile": rows(Profile.objects.filter(site=site, subject__in=subjects)),
        "profiles.IdentityLink": rows(IdentityLink.objects.filter(site=site).filter(
            Q(anon_subject__in=subjects) | Q(user_subject__in=subjects))),
        "profiles.Membership": rows(Membership.objects.filter(site=site, subject__in=subjects),
                                    "segment__name", "segment__slug"),
    }
