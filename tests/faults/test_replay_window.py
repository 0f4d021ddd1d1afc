"""Dedupe for as long as an event is kept: a replay days later is counted, never stored again.

"Days later" is the database as it is that many days after the first delivery:
the stored rows and raw batches moved back in time, the retention purge and the
outbox sweeper run, then the same events arrive again with their own times.
"""

from datetime import datetime, timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from tests.conftest import iso, make_event
from tracking.models import Event, RawBatch
from tracking.privacy.retention import site_retention_purge
from tracking.processing import outbox_drain, outbox_sweep
from tracking.selectors import outcome_totals


def age_everything(site, days: int) -> None:
    """Make the site's stored history ``days`` days older, as if that time had passed."""
    Event.objects.filter(site=site).update(ts=F("ts") - timedelta(days=days))
    RawBatch.objects.filter(site=site).update(received_at=F("received_at") - timedelta(days=days),
                                              processed_at=F("processed_at") - timedelta(days=days))


def first_delivery(api, count: int = 3) -> list[dict]:
    events = [make_event(ts=iso(timezone.now() - timedelta(minutes=5 + i)),
                         params={"engaged_ms": 4000 + i}) for i in range(count)]
    assert api.collect(events).json() == {"accepted": count, "rejected": []}
    outbox_drain()
    return events


def replayed(events: list[dict], days: int) -> list[dict]:
    """The same events as they arrive ``days`` days after the first delivery."""
    return [dict(event, ts=iso(datetime.fromisoformat(event["ts"]) - timedelta(days=days)))
            for event in events]


@pytest.mark.parametrize("days", [1, 20, 29])
def test_a_replay_days_later_is_counted_as_duplicates_and_stores_nothing(consented_api, site,
                                                                         days):
    events = first_delivery(consented_api)
    age_everything(site, days)
    assert site_retention_purge(site=site).events == 0  # within the site's 395 days: nothing goes
    outbox_sweep()  # raw batches are kept 72 hours: dedupe does not rely on them
    assert RawBatch.objects.exists() == (days * 24 < 72)

    for _ in range(3):
        answer = consented_api.collect(replayed(events, days)).json()
        assert answer == {"accepted": 3, "rejected": []}
        outbox_drain()

    totals = outcome_totals(site=site)
    assert Event.objects.filter(site=site, item_index=0).count() == 3
    assert (totals["accepted"], totals["stored"], totals["duplicate"]) == (12, 3, 9)
    assert totals["accepted"] == totals["stored"] + totals["duplicate"]


def test_an_event_older_than_the_site_retention_is_refused_not_stored_again(consented_api,
                                                                            site):
    site.retention_days = 7
    site.save()
    events = first_delivery(consented_api, count=1)
    age_everything(site, 8)
    assert site_retention_purge(site=site).events == 1  # past the retention: the original is gone

    answer = consented_api.collect(replayed(events, 8)).json()

    # Without its original nothing could tell the replay apart: it is refused at the door.
    assert answer["accepted"] == 0
    assert [(r["reason"], r["field"]) for r in answer["rejected"]] == [("invalid", "ts")]
    assert "7-day limit" in answer["rejected"][0]["detail"]
    assert not Event.objects.filter(site=site).exists()


def test_within_a_short_retention_a_replay_is_still_a_duplicate(consented_api, site):
    site.retention_days = 7
    site.save()
    events = first_delivery(consented_api, count=1)
    age_everything(site, 6)
    assert site_retention_purge(site=site).events == 0

    assert consented_api.collect(replayed(events, 6)).json()["accepted"] == 1
    outbox_drain()
    assert outcome_totals(site=site)["duplicate"] == 1
    assert Event.objects.filter(site=site).count() == 1
