"""Keeping flagged events: called by the outbox drain, in its transaction."""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tracking.flagged.models import FlaggedEvent

REASONS = frozenset(FlaggedEvent.Reason.values)


def flagged_events_store(*, site_id: int, candidates: Iterable[Any],
                         user_agents: Mapping[int, str]) -> int:
    """Store the candidates dropped for a bot reason (each once); returns how many were.

    ``candidates`` are the drain's (``tracking.pipeline.Candidate``); ``user_agents`` maps
    a raw batch id to the user agent it came with.
    """
    rows = [
        FlaggedEvent(site_id=site_id, event_id=c.event["event_id"], subject=c.subject,
                     name=c.event["name"], ts=datetime.fromtimestamp(c.ts, tz=UTC),
                     reason=c.drop, source=c.source,
                     user_agent=user_agents.get(c.batch_id, "")[:512], event=c.event)
        for c in candidates if c.drop in REASONS]
    FlaggedEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
