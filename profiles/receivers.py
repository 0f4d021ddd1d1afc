"""Listening to tracking: new clean events are folded into profiles by a task."""

import logging
from typing import Any

from django.dispatch import receiver

from tracking.signals import events_cleaned

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
