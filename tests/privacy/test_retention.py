"""Retention deletes exactly what is past each site's window, in bounded chunks."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import make_event
from tracking import tasks
from tracking.models import Event, PreviousSubjectKey, RawBatch
from tracking.privacy.keys import subject_key_rotate
from tracking.privacy.retention import previous_keys_forget, site_retention_purge
from tracking.services import site_create

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def events_at(site, moments: list[datetime]) -> None:
    Event.objects.bulk_create([
        Event(site=site, event_id=make_event()["event_id"], subject="s" * 32, session="x",
              name="view_item", ts=moment, source="import") for moment in moments])


def batches_at(site, moments: list[datetime]) -> None:
    RawBatch.objects.bulk_create([
        RawBatch(site=site, source="server", received_at=moment, events="[]", n_events=0)
        for moment in moments])


def test_rows_older_than_the_window_go_and_the_rest_stays(site, settings):
    settings.RECSITE = {**settings.RECSITE, "RETENTION_CHUNK_ROWS": 2}
    site.retention_days = 30
    site.save()
    cutoff = NOW - timedelta(days=30)
    old = [cutoff - timedelta(seconds=1), cutoff - timedelta(days=3), cutoff - timedelta(days=90),
           cutoff - timedelta(days=400), cutoff - timedelta(minutes=5)]
    kept = [cutoff, cutoff + timedelta(seconds=1), NOW]
    events_at(site, old + kept)
    batches_at(site, old[:2] + kept)
    longer = site_create(name="Keeps longer", origins=[], retention_days=3650).site
    events_at(longer, old)

    first = site_retention_purge(site=site, now=NOW, max_chunks=2)  # 4 of the 5 old events
    assert (first.events, first.raw_batches, first.done) == (4, 0, False)
    second = site_retention_purge(site=site, now=NOW, max_chunks=2)
    assert (second.events, second.raw_batches, second.done) == (1, 2, True)
    assert sorted(Event.objects.filter(site=site).values_list("ts", flat=True)) == kept
    assert sorted(RawBatch.objects.filter(site=site).values_list("received_at", flat=True)) \
        == kept
    assert Event.objects.filter(site=longer).count() == len(old)
    third = site_retention_purge(site=site, now=NOW)
    assert (third.events, third.raw_batches, third.done) == (0, 0, True)


def test_the_task_fans_out_per_site_and_runs_twice_harmlessly(site):
    events_at(site, [datetime.now(UTC) - timedelta(days=site.retention_days + 1)])
    assert tasks.purge_retention() == 1
    assert not Event.objects.exists()
    assert tasks.purge_retention() == 1 and tasks.purge_site_retention(site.pk) == 0


def test_a_retired_subject_key_is_forgotten_once_its_rows_have_aged_out(site):
    retired = subject_key_rotate(site=site)
    assert previous_keys_forget(now=retired.forget_after - timedelta(seconds=1)) == 0
    assert previous_keys_forget(now=retired.forget_after + timedelta(seconds=1)) == 1
    assert not PreviousSubjectKey.objects.exists()


def test_flagged_bot_events_past_the_window_go_too_after_the_others(site):
    from tracking.flagged.models import FlaggedEvent

    site.retention_days = 30
    site.save()
    cutoff = NOW - timedelta(days=30)
    events_at(site, [cutoff - timedelta(days=1)])
    FlaggedEvent.objects.bulk_create([
        FlaggedEvent(site=site, event_id=make_event()["event_id"], subject="b" * 32,
                     name="view_item", ts=moment, reason="bot_rate", source="browser", event={})
        for moment in (cutoff - timedelta(seconds=1), cutoff)])

    first = site_retention_purge(site=site, now=NOW, max_chunks=1)  # the budget: events only
    assert (first.events, first.flagged, first.done) == (1, 0, False)
    second = site_retention_purge(site=site, now=NOW, max_chunks=2)
    assert (second.events, second.flagged, second.done) == (0, 1, True)
    assert list(FlaggedEvent.objects.filter(site=site).values_list("ts", flat=True)) == [cutoff]
