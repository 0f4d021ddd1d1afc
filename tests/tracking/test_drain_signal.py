"""What the drain tells the other apps, and the long id lists they read back with."""

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
