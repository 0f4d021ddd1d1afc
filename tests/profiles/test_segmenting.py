"""Rule segments: real-time entry on events, time-based exits on schedule, the cache."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from profiles.models import Condition, Membership, Profile, Segment, SegmentSize
from profiles.rules import rule_holds
from profiles.segmenting import facts_for, prefilter, rule_of
from profiles.selectors import subject_segments
from profiles.services import (
    profile_batch_process,
    profiles_rescore,
    segment_evaluate,
    segments_sweep,
)
from tests.conftest import iso, make_event
from tests.profiles.conftest import import_slice, store_events
from tracking.services import subject_hash

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def rule_segment(site, slug: str, *conditions: dict) -> Segment:
    segment = Segment.objects.create(site=site, name=slug.replace("-", " "), slug=slug)
    for condition in conditions:
        Condition.objects.create(segment=segment, **condition)
    return segment


def members(segment: Segment) -> set[str]:
    return set(Membership.objects.filter(segment=segment, until__isnull=True)
               .values_list("subject", flat=True))


def process(site, *events: dict) -> None:
    profile_batch_process(site_id=site.pk, event_pks=store_events(site, *events))


def views(subject: str, category: str, hours_ago: list[float]) -> list[dict]:
    return [{"subject": subject, "category": category, "ts": T0 - timedelta(hours=h)}
            for h in hours_ago]


def test_views_in_a_category_within_a_window_enter_at_once_and_leave_on_schedule(
        site, data_clock):
    lamps = rule_segment(site, "lamp-lookers", {"kind": "events", "event_name": "view_item",
                                                "category": "lamps", "min_count": 5,
                                                "within_hours": 24})
    process(site, *views("v1", "lamps", [5, 4, 3, 2, 1]), *views("v2", "lamps", [4, 3, 2, 1]),
            *views("v3", "rugs", [5, 4, 3, 2, 1]), *views("v4", "lamps", [30, 29, 28, 27, 1]),
            {"subject": "clock", "ts": T0, "name": "page_view", "item_id": ""})

    assert members(lamps) == {"v1"}
    since = Membership.objects.get(segment=lamps, subject="v1").since
    assert [s["slug"] for s in subject_segments(site=site, subject="v1")] == ["lamp-lookers"]
    assert Segment.objects.get(pk=lamps.pk).size == 1

    # 20 hours later the window holds only four of v1's views: time alone makes it leave.
    process(site, {"subject": "clock", "ts": T0 + timedelta(hours=20), "name": "page_view",
                   "item_id": ""})
    assert members(lamps) == {"v1"}  # nobody re-evaluated v1 yet
    assert segments_sweep(site_id=site.pk) == 1

    assert members(lamps) == set()
    ended = Membership.objects.get(segment=lamps, subject="v1")
    assert ended.since == since and ended.until is not None and ended.until >= since
    assert subject_segments(site=site, subject="v1") == []  # the cache followed
    assert SegmentSize.objects.filter(segment=lamps).last().size == 0


def test_purchased_one_item_and_not_another_within_seven_days(site, data_clock):
    def purchase(subject, item, days_ago):
        return {"subject": subject, "name": "purchase", "item_id": item, "value": 10.0,
                "ts": T0 - timedelta(days=days_ago)}

    segment = rule_segment(
        site, "y-not-z",
        {"kind": "events", "event_name": "purchase", "item_id": "Y", "within_hours": 7 * 24},
        {"kind": "events", "event_name": "purchase", "item_id": "Z", "within_hours": 7 * 24,
         "negate": True})
    process(site, purchase("a", "Y", 1), purchase("b", "Y", 2), purchase("b", "Z", 1),
            purchase("c", "Z", 1), purchase("d", "Y", 10), purchase("d", "X", 0))

    assert members(segment) == {"a"}


def test_and_within_groups_or_between_them(site, data_clock):
    segment = rule_segment(
        site, "lapsed-or-big",
        {"kind": "last_seen", "days": 30, "group": 1},
        {"kind": "metric", "metric": "monetary", "op": "gte", "number": 100, "group": 2},
        {"kind": "metric", "metric": "purchases", "op": "gte", "number": 2, "group": 2})
    process(site,
            {"subject": "lapsed", "ts": T0 - timedelta(days=40)},
            {"subject": "big", "name": "purchase", "value": 80.0, "ts": T0 - timedelta(days=1)},
            {"subject": "big", "name": "purchase", "value": 70.0, "ts": T0 - timedelta(days=2)},
            {"subject": "one-big", "name": "purchase", "value": 150.0, "ts": T0},
            {"subject": "small", "name": "purchase", "value": 10.0, "ts": T0 - timedelta(days=1)})

    assert members(segment) == {"lapsed", "big"}


def test_rfm_segments_on_online_retail(site, deliver, data_clock):
    import_slice(deliver, site, "online-retail")
    profiles_rescore(site_id=site.pk)
    segment = rule_segment(site, "best", {"kind": "rfm", "values": ["Champions", "Loyal"]})
    expected = set(Profile.objects.filter(site=site, rfm_segment__in=["Champions", "Loyal"])
                   .values_list("subject", flat=True))
    assert expected  # the slice has some of both kinds of good customers

    segment_evaluate(segment=segment)  # as the admin does after a save

    assert members(segment) == expected
    assert Segment.objects.get(pk=segment.pk).size == len(expected)


def test_a_visitor_enters_a_segment_as_their_events_arrive(consented_api, site, deliver):
    carts = rule_segment(site, "carting", {"kind": "events", "event_name": "add_to_cart",
                                           "min_count": 2, "within_hours": 1})
    visitor = subject_hash(site=site, kind="a", raw_id="a_visitor1")
    first = [make_event(name="add_to_cart", ts=iso(datetime.now(UTC) - timedelta(minutes=5)))]
    deliver(consented_api.collect, first)
    assert members(carts) == set()

    deliver(consented_api.collect, [make_event(name="add_to_cart")])

    assert members(carts) == {visitor}
    assert subject_segments(site=site, subject=visitor)[0]["slug"] == "carting"


def test_the_database_prefilter_keeps_every_match(site):
    rng = random.Random(7)
    events = []
    for i in range(80):
        for _ in range(rng.randint(1, 4)):
            events.append({"subject": f"p{i}", "ts": T0 - timedelta(days=rng.uniform(0, 60)),
                           "name": rng.choice(["view_item", "purchase"]),
                           "value": rng.choice([None, 5.0, 50.0]),
                           "category": rng.choice(["lamps", "rugs"])})
    process(site, *events)
    Profile.objects.filter(site=site, subject__in=["p1", "p2", "p3"]).update(
        rfm_segment="Champions")
    kinds = [
        {"kind": "last_seen", "days": 20}, {"kind": "rfm", "values": ["Champions"]},
        {"kind": "metric", "metric": "monetary", "op": "gte", "number": 40},
        {"kind": "metric", "metric": "recency_days", "op": "lte", "number": 10.5},
        {"kind": "metric", "metric": "recency_days", "op": "gte", "number": 3.25},
        {"kind": "events", "event_name": "purchase", "within_hours": 24 * 9},
        {"kind": "affinity", "category": "lamps", "number": 0.5},
        {"kind": "stage", "values": ["churned"]},
    ]
    profiles = list(Profile.objects.filter(site=site))
    now = int(T0.timestamp() * 1e6)
    matched_some = narrowed_some = 0
    for trial in range(40):
        conditions = [dict(rng.choice(kinds), group=rng.randint(1, 2),
                           negate=rng.random() < 0.3) for _ in range(rng.randint(1, 3))]
        segment = rule_segment(site, f"trial-{trial}", *conditions)
        rule = rule_of(segment)
        facts = facts_for(site=site, profiles=profiles, segment_rules=[rule], as_of=now)
        matches = {s for s, f in facts.items() if rule_holds(rule, f, now=now)}
        passed = set(Profile.objects.filter(site=site).filter(prefilter(rule, as_of=now))
                     .values_list("subject", flat=True))
        assert matches <= passed, conditions
        matched_some += bool(matches)
        narrowed_some += len(passed) < len(profiles)
    assert matched_some > 5 and narrowed_some > 5  # the trials were not all trivial


def test_a_batch_costs_the_same_few_statements_whatever_its_size(site, data_clock,
                                                                   monkeypatch):
    """Round trips per batch do not grow with it: profiles read once and written once,
    links read once and written once, memberships read once and written once."""
    import psycopg

    cart = rule_segment(site, "cart-in-a-day", {"kind": "events", "event_name": "add_to_cart",
                                                "within_hours": 24})
    rule_segment(site, "best", {"kind": "rfm", "values": ["Champions", "Loyal"]})
    rule_segment(site, "lapsed", {"kind": "last_seen", "days": 30})

    def shop(tag: str, n: int) -> list[dict]:
        """n visitors who view, put in the cart, then log in and buy (a link each)."""
        return [event for i in range(n) for event in (
            {"subject": f"{tag}{i}", "ts": T0, "item_id": f"sku-{i}", "category": "lamps"},
            {"subject": f"{tag}{i}", "ts": T0, "name": "add_to_cart", "item_id": f"sku-{i}"},
            {"subject": f"{tag}{i}", "user_subject": f"user-{tag}{i}", "ts": T0,
             "name": "purchase", "value": 10.0 + i, "item_id": f"sku-{i}"})]

    statements = 0
    execute = psycopg.Cursor.execute

    def counted(cursor, *args, **kwargs):  # every statement, the ORM's and the raw ones
        nonlocal statements
        statements += 1
        return execute(cursor, *args, **kwargs)

    def cost(events: list[dict]) -> int:
        nonlocal statements
        pks = store_events(site, *events)
        statements = 0
        with monkeypatch.context() as patch:
            patch.setattr(psycopg.Cursor, "execute", counted)
            profile_batch_process(site_id=site.pk, event_pks=pks)
        return statements

    process(site, *shop("warm", 2))  # the rules are read and kept before the counts
    small, large = cost(shop("a", 3)), cost(shop("b", 100))

    assert small == large <= 15  # 13, and a savepoint in the test's transaction (2)
    assert len(members(cart)) == 2 + 3 + 100
    assert Segment.objects.get(pk=cart.pk).size == 105
