"""Identity stitching: an anonymous visitor who logs in joins the user, with the guards."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from profiles.identity import Candidate, links_decide
from profiles.models import IdentityLink, Profile
from profiles.services import profile_events_apply, profiles_recompute, profiles_rescore
from tests.conftest import iso, make_event
from tests.profiles.conftest import profile_snapshot, store_events
from tracking.services import subject_hash

pytestmark = pytest.mark.django_db

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def anon(site, raw: str) -> str:
    return subject_hash(site=site, kind="a", raw_id=raw)


def user(site, raw: str) -> str:
    return subject_hash(site=site, kind="u", raw_id=raw)


def store(site, *events: tuple[str, str | None, str, datetime]) -> list[int]:
    """Stored events given as (subject, user_subject, name, ts); returns their ids."""
    return store_events(site, *[{"subject": subject, "user_subject": user_subject,
                                 "name": name, "ts": ts}
                                for subject, user_subject, name, ts in events])


def profile(site, subject: str) -> Profile:
    return Profile.objects.get(site=site, subject=subject)


def test_a_visitor_who_logs_in_joins_the_user_through_the_api(consented_api, site, deliver):
    browse = [make_event(ts=iso(T0 + timedelta(minutes=i))) for i in range(3)]
    login = make_event(ts=iso(T0 + timedelta(minutes=5)), user_id="customer-7", name="login")
    later = make_event(ts=iso(T0 + timedelta(minutes=9)), name="add_to_cart")

    for batch in (browse, [login], [later]):
        response = deliver(consented_api.collect, batch)
        assert response.status_code == 202 and response.json()["accepted"] == len(batch)

    visitor, customer = anon(site, "a_visitor1"), user(site, "customer-7")
    assert IdentityLink.objects.get(site=site, anon_subject=visitor).user_subject == customer
    assert not Profile.objects.filter(site=site, subject=visitor).exists()
    merged = profile(site, customer)
    assert merged.identified
    assert merged.events == 5  # 3 views before, the login, and the later cart
    assert merged.by_type == {"view_item": 3, "login": 1, "add_to_cart": 1}
    # Times as sent, give or take the clock-skew correction of a few milliseconds.
    assert abs(merged.first_seen - T0) < timedelta(seconds=1)
    assert abs(merged.last_seen - (T0 + timedelta(minutes=9))) < timedelta(seconds=1)
    assert merged.alias_list == [visitor]


def test_junk_user_ids_never_identify(site):
    visitor = anon(site, "a_1")
    junk = ["null", "undefined", "0", "anonymous", "guest", "[object Object]", "NaN", "true",
            "false", "", "NULL", "None"]
    pks = store(site, (visitor, None, "view_item", T0),
                *[(visitor, user(site, raw), "login", T0 + timedelta(minutes=i + 1))
                  for i, raw in enumerate(junk)])

    profile_events_apply(site_id=site.pk, event_pks=pks)

    assert not IdentityLink.objects.filter(site=site).exists()
    assert list(Profile.objects.filter(site=site).values_list("subject", flat=True)) == [visitor]
    assert profile(site, visitor).events == 1 + len(junk)
    assert not profile(site, visitor).identified


def test_junk_user_ids_are_refused_at_ingest_too(consented_api, site, deliver):
    events = [make_event(ts=iso(T0 + timedelta(minutes=i)), user_id=raw)
              for i, raw in enumerate(["undefined", "null", "guest", "0"])]
    assert deliver(consented_api.collect, events).json()["accepted"] == 4
    assert not IdentityLink.objects.filter(site=site).exists()
    assert Profile.objects.get(site=site).subject == anon(site, "a_visitor1")


def test_an_identified_visitor_is_never_merged_into_another_user(site):
    visitor, first, second = anon(site, "a_1"), user(site, "alice"), user(site, "mallory")
    pks = store(site, (visitor, None, "view_item", T0),
                (visitor, first, "login", T0 + timedelta(minutes=1)),
                (visitor, None, "view_item", T0 + timedelta(minutes=2)))
    profile_events_apply(site_id=site.pk, event_pks=pks)
    pks = store(site, (visitor, second, "login", T0 + timedelta(minutes=3)),
                (visitor, None, "view_item", T0 + timedelta(minutes=4)))

    profile_events_apply(site_id=site.pk, event_pks=pks)

    assert IdentityLink.objects.get(site=site, anon_subject=visitor).user_subject == first
    assert profile(site, first).events == 4  # the visitor's history and later events
    assert profile(site, second).events == 1  # only the event that named mallory
    assert profile(site, second).alias_list == [visitor]


def test_one_user_absorbs_at_most_the_daily_cap(site, settings):
    settings.RECSITE = {"PROFILE_LINK_CAP_PER_DAY": "2"}
    shared = user(site, "leaked-id")
    visitors = [anon(site, f"a_{i}") for i in range(4)]
    pks = store(site, *[(v, None, "view_item", T0 + timedelta(minutes=i))
                        for i, v in enumerate(visitors)],
                *[(v, shared, "login", T0 + timedelta(minutes=10 + i))
                  for i, v in enumerate(visitors[:3])])
    profile_events_apply(site_id=site.pk, event_pks=pks)
    # The next day the cap starts again.
    pks = store(site, (visitors[3], shared, "login", T0 + timedelta(days=1)))

    profile_events_apply(site_id=site.pk, event_pks=pks)

    linked = set(IdentityLink.objects.filter(site=site, user_subject=shared)
                 .values_list("anon_subject", flat=True))
    assert linked == {visitors[0], visitors[1], visitors[3]}
    assert profile(site, visitors[2]).events == 1  # kept apart: over the cap that day
    assert profile(site, shared).events == 3 + 3 + 1


def test_stitching_survives_a_full_recompute(site, settings):
    settings.RECSITE = {"PROFILE_LINK_CAP_PER_DAY": "1"}
    a, b, c = anon(site, "a_1"), anon(site, "a_2"), anon(site, "a_3")
    alice, bob = user(site, "alice"), user(site, "bob")
    batches = [
        [(a, None, "view_item", T0), (b, None, "view_item", T0)],
        [(a, alice, "login", T0 + timedelta(minutes=1)), (b, alice, "login", T0 +
                                                          timedelta(minutes=2))],
        [(a, bob, "login", T0 + timedelta(minutes=3)), (c, None, "view_item", T0),
         (a, None, "purchase", T0 + timedelta(minutes=4)), (c, user(site, "null"), "login",
                                                            T0 + timedelta(minutes=5))],
    ]
    for batch in batches:
        profile_events_apply(site_id=site.pk, event_pks=store(site, *batch))
    profiles_rescore(site_id=site.pk)  # the cut points a recompute computes too
    incremental = profile_snapshot(site)

    profiles_recompute(site_id=site.pk)

    assert profile_snapshot(site) == incremental
    assert set(incremental) == {alice, b, bob, c}


def test_links_decide_applies_every_guard():
    day = date(2026, 11, 20)
    ts = datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp()
    made = links_decide(
        [Candidate("a1", "u1", ts), Candidate("a1", "u2", ts),  # second user: refused
         Candidate("a2", "junk", ts),  # not an id
         Candidate("a3", "u1", ts), Candidate("a4", "u1", ts),  # a4: over the cap of 2
         Candidate("u5", "u5", ts)],  # not anonymous
        linked={"a0": "u9"}, links_per_user_day=Counter({("u1", day): 0}), cap=2,
        junk=frozenset({"junk"}))
    assert [(link.anon, link.user) for link in made] == [("a1", "u1"), ("a3", "u1")]


def test_erasure_removes_profiles_links_and_memberships(site):
    from profiles.models import Membership, Segment
    from profiles.services import profile_erase

    visitor, alice, bob = anon(site, "a_1"), user(site, "alice"), user(site, "bob")
    profile_events_apply(site_id=site.pk, event_pks=store(
        site, (visitor, None, "view_item", T0),
        (visitor, alice, "login", T0 + timedelta(minutes=1)), (bob, bob, "view_item", T0)))
    segment = Segment.objects.create(site=site, name="all", slug="all")
    for subject in (alice, bob):
        Membership.objects.create(segment=segment, site=site, subject=subject, since=T0)
    Segment.objects.filter(pk=segment.pk).update(size=2)

    profile_erase(site=site, subjects=[visitor])  # the person's device: their profile goes

    assert not Profile.objects.filter(site=site, subject=alice).exists()
    assert not IdentityLink.objects.filter(site=site).exists()
    assert list(Membership.objects.values_list("subject", flat=True)) == [bob]
    segment.refresh_from_db()
    assert segment.size == 1
    assert Profile.objects.filter(site=site, subject=bob).exists()
