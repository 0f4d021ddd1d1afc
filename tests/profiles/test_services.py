"""Profiles from real data: the incremental path, the full recompute, and that they agree."""

import csv
import gzip
import math
from collections import defaultdict
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from profiles import rfm
from profiles.models import AppliedBatch, Profile, SiteState
from profiles.services import (
    profile_events_apply,
    profiles_recompute,
    profiles_rescore,
    site_cuts,
)
from tests.profiles.conftest import (
    MOVIELENS,
    RETAIL,
    floats_snapshot,
    import_slice,
    profile_snapshot,
)
from tracking.importers import online_retail_epoch_ms
from tracking.models import Event
from tracking.services import subject_hash

pytestmark = pytest.mark.django_db


def rows_of(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def retail_customers() -> dict[str, dict]:
    """What the slice says of each customer, computed from the CSV alone."""
    customers: dict[str, dict] = defaultdict(lambda: {
        "invoices": set(), "net": 0.0, "times": [], "purchase_times": []})
    for row in rows_of(RETAIL):
        customer = row["CustomerID"].strip().removesuffix(".0")
        quantity = int(row["Quantity"])
        if not customer or quantity == 0 or (quantity < 0 and not row["InvoiceNo"].startswith("C")):
            continue
        value = round(abs(quantity) * float(row["UnitPrice"]), 6)
        when = online_retail_epoch_ms(row["InvoiceDate"]) * 1000
        c = customers[customer]
        c["times"].append(when)
        if row["InvoiceNo"].startswith("C"):
            c["net"] -= value
        else:
            c["net"] += value
            c["invoices"].add(row["InvoiceNo"])
            c["purchase_times"].append(when)
    return customers


def at(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


def test_online_retail_profiles_match_the_file(site, deliver):
    import_slice(deliver, site, "online-retail")

    expected = retail_customers()
    assert Profile.objects.filter(site=site).count() == len(expected) > 20
    for customer, c in expected.items():
        profile = Profile.objects.get(
            site=site, subject=subject_hash(site=site, kind="u", raw_id=f"retail-{customer}"))
        assert profile.identified
        assert profile.purchases == len(c["invoices"])
        assert profile.monetary == pytest.approx(c["net"], abs=1e-6)
        assert profile.first_seen == at(min(c["times"]))
        assert profile.last_seen == at(max(c["times"]))
        assert profile.active_days == len({t // 86_400_000_000 for t in c["times"]})
        assert profile.events == len(c["times"])
        if c["purchase_times"]:
            assert profile.last_purchase == at(max(c["purchase_times"]))


def test_movielens_affinity_decays_by_half_life(site, deliver, settings):
    settings.RECSITE = {"AFFINITY_HALF_LIFE_DAYS": "30"}
    import_slice(deliver, site, "movielens")

    genres = {row["movieId"]: row["genres"].split("|")[0] for row in rows_of(MOVIELENS /
                                                                              "movies.csv.gz")}
    ratings = [r for r in rows_of(MOVIELENS / "ratings.csv.gz") if r["userId"] == "1"]
    last = max(int(r["timestamp"]) for r in ratings)
    scores: dict[str, float] = defaultdict(float)
    for r in ratings:
        age_days = (last - int(r["timestamp"])) / 86400
        scores[genres[r["movieId"]]] += float(r["rating"]) / 2.5 * 0.5 ** (age_days / 30)

    profile = Profile.objects.get(site=site,
                                  subject=subject_hash(site=site, kind="u", raw_id="movielens-1"))
    assert profile.events == len(ratings) == profile.by_type["rate_item"]
    assert set(profile.affinity) == set(scores)
    for genre, score in scores.items():
        assert profile.affinity[genre] == pytest.approx(score, rel=1e-9)


def test_incremental_and_full_recompute_give_the_same_profiles(site, deliver, data_clock):
    import_slice(deliver, site, "online-retail")
    import_slice(deliver, site, "movielens")
    assert Profile.objects.filter(site=site).count() > 25
    profiles_rescore(site_id=site.pk)  # scheduled cut points, applied to every profile
    incremental, incremental_floats = profile_snapshot(site), floats_snapshot(site)
    assert {p["rfm_segment"] for p in incremental.values()} - {""}, "nobody was scored"

    result = profiles_recompute(site_id=site.pk)

    assert result.profiles == len(incremental)
    assert result.events == Event.objects.filter(site=site, item_index=0).count()
    assert profile_snapshot(site) == incremental
    recomputed_floats = floats_snapshot(site)
    assert recomputed_floats.keys() == incremental_floats.keys()
    for subject, values in incremental_floats.items():
        assert recomputed_floats[subject] == pytest.approx(values, rel=1e-9, abs=1e-9)


def test_a_batch_applied_twice_counts_once(site, deliver):
    import_slice(deliver, site, "online-retail")
    before = profile_snapshot(site)
    pks = list(Event.objects.filter(site=site).values_list("pk", flat=True)[:40])
    AppliedBatch.objects.all().delete()  # as if these were a new batch ...
    first = profile_events_apply(site_id=site.pk, event_pks=pks)
    assert first.rows == 40 and not first.repeated
    second = profile_events_apply(site_id=site.pk, event_pks=list(reversed(pks)))
    assert second.repeated and second.rows == 0
    after = profile_snapshot(site)
    changed = [s for s in after if after[s]["events"] != before[s]["events"]]
    assert changed  # ... applied once: the distinct counts did not move, the plain counts did
    for subject in changed:
        assert after[subject]["purchases"] == before[subject]["purchases"]
        assert after[subject]["active_days"] == before[subject]["active_days"]


def test_events_below_the_watermark_are_left_to_the_recompute(site, deliver):
    import_slice(deliver, site, "online-retail")
    profiles_recompute(site_id=site.pk)
    state = SiteState.objects.get(site=site)
    assert state.watermark == Event.objects.filter(site=site).latest("pk").pk
    before = profile_snapshot(site)
    pks = list(Event.objects.filter(site=site).values_list("pk", flat=True))

    result = profile_events_apply(site_id=site.pk, event_pks=pks)  # a late duplicate delivery

    assert result.rows == 0
    assert profile_snapshot(site) == before


def test_new_values_are_scored_with_the_last_cut_points(site, deliver, data_clock):
    import_slice(deliver, site, "online-retail")
    profiles_rescore(site_id=site.pk)
    cuts = site_cuts(SiteState.objects.get(site=site))
    assert cuts is not None and cuts.mode == rfm.Mode.PURCHASES and len(cuts.monetary) == 4

    for profile in Profile.objects.filter(site=site, purchases__gt=0):
        basis = int(profile.last_purchase.timestamp() * 1e6)
        assert profile.r_score == 1 + sum(c < basis for c in cuts.recency)
        assert profile.f_score == 1 + sum(c < profile.purchases for c in cuts.frequency)
        assert profile.m_score == 1 + sum(c < profile.monetary for c in cuts.monetary)
    # Refund-only customers are outside the buyers' population: no scores.
    for profile in Profile.objects.filter(site=site, purchases=0):
        assert profile.r_score is None and profile.rfm_segment == ""


def test_rebuild_profiles_command_rebuilds_every_site(site, deliver):
    import_slice(deliver, site, "online-retail")
    expected = profile_snapshot(site)
    Profile.objects.all().delete()
    out = StringIO()

    call_command("rebuild_profiles", stdout=out, stderr=StringIO())

    assert profile_snapshot(site).keys() == expected.keys()
    assert f"{len(expected)} profiles" in out.getvalue()


def test_affinity_weights_follow_half_life_exactly():
    from profiles.state import EventRow, FoldRules, ProfileState

    day = 86_400_000_000
    rules = FoldRules(weights={"view_item": 1.0, "purchase": 5.0}, half_life_us=10 * day)
    state = ProfileState(subject="u")

    def row(ts, name, category):
        return EventRow("u", "u", None, "s", name, "i", 0, ts, None, None, None, category, "k")

    state.add_rows([row(0, "view_item", "lamps"), row(10 * day, "purchase", "lamps"),
                    row(20 * day, "view_item", "rugs")], rules)
    state.settle(rules)
    assert state.affinity["lamps"] == pytest.approx(0.25 + 5 * 0.5)
    assert state.affinity["rugs"] == pytest.approx(1.0)
    assert math.isclose(state.affinity_at, 20 * day)
