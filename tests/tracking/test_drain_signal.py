"""What the drain tells the other apps, and the long id lists they read back with."""

import time

import pytest

from tests.conftest import make_event
from tracking.db import pk_in
from tracking.models import Event
from tracking.processing import outbox_drain
from tracking.services import subject_hash
from tracking.signals import events_cleaned


@pytest.fixture
def sent():
    """Every events_cleaned the test's drains send, as their keyword arguments."""
    calls: list[dict] = []

    def listen(sender, **kwargs):
        calls.append(kwargs)

    events_cleaned.connect(listen, dispatch_uid="test.sent")
    yield calls
    events_cleaned.disconnect(dispatch_uid="test.sent")


def test_the_signal_names_the_stored_rows_and_their_subjects(consented_api, site, sent,
                                                             django_capture_on_commit_callbacks):
    assert consented_api.consent("a_other").status_code == 201
    consented_api.collect([make_event(user_id="customer-1"), make_event(anon_id="a_other")])
    with django_capture_on_commit_callbacks(execute=True):
        outbox_drain()

    stored = set(Event.objects.filter(site=site).values_list("pk", flat=True))
    (call,) = [c for c in sent if c["site_id"] == site.pk]
    assert set(call["event_pks"]) == stored
    assert call["subjects"] == {subject_hash(site=site, kind="a", raw_id="a_visitor1"),
                                subject_hash(site=site, kind="u", raw_id="customer-1"),
                                subject_hash(site=site, kind="a", raw_id="a_other")}


def test_a_drain_of_only_duplicates_sends_nothing(consented_api, site, sent,
                                                  django_capture_on_commit_callbacks):
    event = make_event()
    consented_api.collect([event])
    with django_capture_on_commit_callbacks(execute=True):
        outbox_drain()
    consented_api.collect([event])  # the same event_id again
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        outbox_drain()
    assert sent == []


@pytest.mark.parametrize("n", [0, 1, 5_000])
def test_pk_in_selects_exactly_those_rows(consented_api, site, n):
    consented_api.collect([make_event() for _ in range(20)])
    outbox_drain()
    pks = sorted(Event.objects.filter(site=site).values_list("pk", flat=True))
    wanted = set(pks[::3][:n]) | set(range(10**9, 10**9 + max(0, n - 7)))  # most not stored
    found = set(Event.objects.filter(pk_in(wanted)).values_list("pk", flat=True))
    assert found == wanted & set(pks)


@pytest.mark.parametrize("linger", [0.0, 0.2])
def test_a_lingering_drain_takes_the_batch_whose_request_skipped_asking(
        consented_api, site, settings, monkeypatch, linger):
    """The flag memo's race: a request that saw the flag set moments ago does not ask for
    a drain, while the drain that flag announced has already looked. The drain task's
    last look comes ``linger`` after it cleared the flag, so it still takes that batch."""
    from django.core.cache import cache

    from tracking import processing, services

    settings.CELERY_TASK_ALWAYS_EAGER = False  # as with a worker: the memo is on
    monkeypatch.setattr(services, "_drain_enqueue", lambda: None)  # no worker here
    consented_api.collect([make_event()])  # sets the flag: a drain is on its way
    consented_api.collect([make_event()])  # sees it set: this process stops asking a while
    assert cache.get(services.PENDING_FLAG) is not None

    def a_request_meanwhile(seconds: float) -> None:  # while the drain waits for its last look
        assert cache.get(services.PENDING_FLAG) is None  # the drain cleared it
        # The web process saw the flag set moments ago (in this test the drain shares the
        # process and forgot that, as a worker's drain would not).
        monkeypatch.setattr(services, "_flag_seen_at", time.monotonic())
        consented_api.collect([make_event()])  # the memo is fresh: no flag, no drain asked
        assert cache.get(services.PENDING_FLAG) is None

    monkeypatch.setattr(processing.time, "sleep", a_request_meanwhile)
    result = outbox_drain(linger=linger)
    if not linger:
        a_request_meanwhile(0)  # the same request, after a drain that does not linger
    assert result.stored == (3 if linger else 2)
    assert (services.RawBatch.objects.filter(processed_at__isnull=True).count()
            == (0 if linger else 1))
