"""Fixtures of the profiles tests: real data slices imported with the signal delivered."""

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from profiles.models import Profile, SiteState
from tracking.importers import events_import
from tracking.models import Event

DATA = Path(__file__).resolve().parent.parent / "data"
RETAIL = DATA / "online_retail_300.csv.gz"  # first 300 rows of the UCI Online Retail sample
MOVIELENS = DATA / "movielens"  # ratings of MovieLens users 1-5

# Fields a profile holds, but for the sums of floats (the order of addition differs between
# the incremental path and a recompute: they are compared approximately).
COMPARED = ("subject", "identified", "aliases", "first_seen", "last_seen", "last_purchase",
            "events", "by_type", "sessions", "session_keys", "active_days", "days", "purchases",
            "purchase_keys", "engaged_ms", "devices", "r_score", "f_score",
            "m_score", "rfm_segment", "stage")


@pytest.fixture
def deliver(django_capture_on_commit_callbacks) -> Callable[..., Any]:
    """Run a callable and then its on-commit callbacks (the events_cleaned signal among them),
    as a real commit would; the test's own transaction never commits."""

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            result = fn(*args, **kwargs)
        return result

    return run


@pytest.fixture
def data_clock(site) -> SiteState:
    """Profiles of this site age by its latest event (the data sets are years old)."""
    state, _ = SiteState.objects.get_or_create(site=site)
    state.clock_mode = SiteState.Clock.DATA
    state.save()
    return state


def import_slice(deliver, site, fmt: str) -> Any:
    path = RETAIL if fmt == "online-retail" else MOVIELENS
    return deliver(events_import, site=site, format=fmt, path=path)


def profile_snapshot(site) -> dict[str, dict[str, Any]]:
    """Every profile of a site as plain values, by subject (float sums separately)."""
    return {p.subject: {name: getattr(p, name) for name in COMPARED}
            for p in Profile.objects.filter(site=site)}


def floats_snapshot(site) -> dict[str, dict[str, float]]:
    """Monetary and the affinity scores of every profile, by subject."""
    return {p.subject: {"monetary": p.monetary, **p.affinity}
            for p in Profile.objects.filter(site=site)}


def store_events(site, *events: dict[str, Any]) -> list[int]:
    """Event rows as the drain stores them, bypassing ingest (as a careless import path
    might); each dict names subject and ts, optionally user_subject, name, item_id,
    category, value, device and session. Returns their ids."""
    rows = []
    for i, event in enumerate(events):
        context: dict[str, Any] = {"device": event.get("device", "mobile")}
        if event.get("category"):
            context["item"] = {"item_category": event["category"]}
        ts: datetime = event["ts"]
        rows.append(Event(
            site=site, event_id=uuid.uuid4(), subject=event["subject"],
            user_subject=event.get("user_subject"), session=event.get("session", f"s{i}"),
            name=event.get("name", "view_item"), item_id=event.get("item_id", "sku-1"), ts=ts,
            value=event.get("value"), source="server", context=context))
    return [e.pk for e in Event.objects.bulk_create(rows)]
