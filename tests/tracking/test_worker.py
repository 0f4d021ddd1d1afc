"""End to end with a real Celery worker process, real Redis and real PostgreSQL."""

from datetime import timedelta

import pytest
from django.core.cache import cache

from recsite.celery import app as celery_app
from tests.conftest import make_event, now_iso, wait_for
from tracking.models import Event, RawBatch
from tracking.processing import outbox_sweep
from tracking.selectors import outcome_totals
from tracking.services import PENDING_FLAG

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def stored(site) -> int:
    return Event.objects.filter(site=site, item_index=0).count()


def test_collect_to_event_through_the_worker(consented_api, site, celery_worker):
    # One second apart: 30 events in the same second would be a bot (rate rule).
    events = [make_event(ts=now_iso(timedelta(seconds=-i))) for i in range(30)]
    for start in range(0, 30, 10):
        assert consented_api.collect(events[start:start + 10]).status_code == 202
    assert wait_for(lambda: stored(site) == 30), f"stored {stored(site)} of 30"
    assert not RawBatch.objects.filter(processed_at__isnull=True).exists()
    totals = outcome_totals(site=site)
    assert totals["accepted"] == totals["stored"] == 30


def test_a_lost_message_is_recovered_by_the_sweeper(consented_api, site, celery_worker,
                                                    settings):
    # Take the worker's queue away while a batch is accepted: its message is lost.
    settings.RECSITE = {"SWEEP_AFTER_SECONDS": 0}
    celery_app.control.cancel_consumer("ingest", reply=True)
    try:
        assert consented_api.collect([make_event(), make_event()]).status_code == 202
        celery_app.control.purge()  # the message is gone, as after a Redis restart
        assert cache.get(PENDING_FLAG) is not None  # the flag still claims a drain is queued
    finally:
        celery_app.control.add_consumer("ingest", reply=True)
    assert not wait_for(lambda: stored(site) > 0, timeout=1.5)  # nothing comes by itself
    assert outbox_sweep() == 1  # the periodic sweeper finds the waiting batch
    assert wait_for(lambda: stored(site) == 2), f"stored {stored(site)} of 2"


def test_the_task_run_twice_stores_nothing_twice(consented_api, site, celery_worker):
    assert consented_api.collect([make_event(), make_event()]).status_code == 202
    assert wait_for(lambda: stored(site) == 2)
    RawBatch.objects.update(processed_at=None)  # as if the first run's ack had been lost
    celery_app.send_task("tracking.process_outbox", queue="ingest")
    assert wait_for(lambda: outcome_totals(site=site).get("duplicate") == 2)
    assert stored(site) == 2
