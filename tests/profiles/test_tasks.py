"""Tasks: each run twice does its work once; the real worker folds collected events."""

from datetime import UTC, datetime, timedelta

import pytest

from profiles import tasks
from profiles.models import Condition, Membership, Profile, Segment
from tests.conftest import iso, make_event, wait_for
from tests.profiles.conftest import import_slice, profile_snapshot, store_events
from tracking.models import Event
from tracking.services import subject_hash


@pytest.mark.django_db
def test_every_task_run_twice_does_its_work_once(site, deliver, data_clock):
    import_slice(deliver, site, "online-retail")
    segment = Segment.objects.create(site=site, name="lapsed", slug="lapsed")
    Condition.objects.create(segment=segment, kind="last_seen", days=60)

    assert tasks.recompute(site.pk) == tasks.recompute(site.pk) > 0
    assert tasks.sweep_segments(site.pk) > 0
    assert tasks.sweep_segments(site.pk) == 0
    assert tasks.rescore(site.pk) == 0  # the recompute scored with the same cut points
    assert tasks.evaluate_segment(segment.pk) == 0
    members = Membership.objects.filter(segment=segment, until__isnull=True).count()
    assert members > 0
    k = tasks.refit_clusters(site.pk)
    assert k >= 2 and tasks.refit_clusters(site.pk) == k

    before = profile_snapshot(site)
    pks = store_events(site, {"subject": "visitor", "ts": datetime(2011, 12, 9, tzinfo=UTC)})
    assert tasks.apply_events(site.pk, pks) == 1
    assert tasks.apply_events(site.pk, pks) == 0
    after = profile_snapshot(site)
    assert after["visitor"]["events"] == 1 and after.keys() - before.keys() == {"visitor"}
    assert tasks.for_each_site("sweep_segments") == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_collected_events_reach_profiles_through_the_worker(consented_api, site,
                                                            celery_worker):
    now = datetime.now(UTC)
    events = [make_event(ts=iso(now - timedelta(seconds=10 - i)),
                         name="add_to_cart" if i % 2 else "view_item",
                         items=[{"item_id": f"sku-{i}", "item_category": "lamps",
                                 "price": 10.0}]) for i in range(6)]
    assert consented_api.collect(events).status_code == 202
    subject = subject_hash(site=site, kind="a", raw_id="a_visitor1")

    def folded() -> bool:
        profile = Profile.objects.filter(site=site, subject=subject).first()
        return profile is not None and profile.events == 6

    assert wait_for(folded), f"{Event.objects.filter(site=site).count()} events stored"
    profile = Profile.objects.get(site=site, subject=subject)
    assert profile.by_type == {"view_item": 3, "add_to_cart": 3}
    assert profile.devices == {"mobile": 6}
    assert list(profile.affinity) == ["lamps"]
