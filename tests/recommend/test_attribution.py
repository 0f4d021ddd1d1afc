"""Attribution: impressions, clicks and conversions joined to the recommendation behind them,
per placement, variant and model version; experiment results and the bandit."""

import time

import pytest

from recommend import services, tasks
from recommend.attribution import attribution_report, events_attribute, experiment_results
from recommend.caching import answer_cache
from recommend.models import Attribution, Placement
from recommend.recommending import RecRequest, recommendation_list
from recommend.tokens import RecToken, token_sign
from tests.conftest import make_event
from tests.recommend.conftest import visit
from tests.recommend.test_training import GROUPS
from tracking.models import Event
from tracking.services import subject_hash

pytestmark = pytest.mark.django_db
ANON = "a_visitor1"


def shown_list(site, placement="home"):
    subject = subject_hash(site=site, kind="a", raw_id=ANON)
    return recommendation_list(site=site, subject=subject, generation=0,
                               request=RecRequest(placement=placement, limit=4))


def journey(token: str, items: list[str], *, anon: str = ANON) -> list[dict]:
    """What the tracker sends: the list seen, a click, the clicked item added to the cart."""
    clicked = items[0]
    return [
        make_event(name="view_item_list", anon_id=anon,
                   items=[{"item_id": i, "index": n} for n, i in enumerate(items)],
                   params={"item_list_id": "home", "rec_token": token}),
        make_event(name="select_item", anon_id=anon, items=[{"item_id": clicked}],
                   params={"item_list_id": "home", "rec_token": token}),
        make_event(name="add_to_cart", anon_id=anon,
                   items=[{"item_id": clicked, "price": 15.0, "quantity": 2,
                           "rec_token": token}],
                   params={"currency": "EUR", "value": 30.0, "rec_token": token}),
        make_event(name="purchase", anon_id=anon,
                   items=[{"item_id": clicked, "price": 15.0, "quantity": 2, "rec_token": token},
                          {"item_id": "sku-not-shown", "price": 5.0, "rec_token": token}],
                   params={"currency": "EUR", "value": 35.0, "transaction_id": "T1",
                           "rec_token": token}),
    ]


def test_a_journey_counts_once_per_placement_variant_and_model(site, trained, consented_api,
                                                               deliver):
    placement = Placement.objects.create(site=site, name="home", limit=4)
    experiment = placement.experiments.create(site=site, name="A/B", slug="ab")
    experiment.variants.create(name="control", weight=1, is_control=True)
    rec = shown_list(site)
    items = [entry.item_id for entry in rec.items]
    assert deliver(consented_api.collect, journey(rec.token, items)).status_code == 202
    (row,) = attribution_report(site_id=site.pk)
    assert row.key == ("home", "control", trained.pk)
    assert (row.impressions, row.clicks, row.add_to_cart, row.purchases) == (1, 1, 1, 1)
    assert row.revenue == pytest.approx(30.0)  # the shown item's line, not the other one
    assert row.ctr == 1.0 and row.conversion_rate == 2.0
    # Idempotent: the same events attributed again add nothing.
    pks = list(Event.objects.filter(site=site).values_list("pk", flat=True))
    assert events_attribute(site_id=site.pk, event_pks=pks) == 0
    assert Attribution.objects.count() == 4
    result = experiment_results(experiment=experiment)
    assert result.arms[0].impressions == 1 and result.arms[0].clicks == 1
    assert result.warnings  # one impression: far too few to conclude


def test_forged_foreign_and_late_tokens_count_nothing(site, trained, api, deliver):
    for anon in (ANON, "a_visitor2"):
        assert api.consent(anon).status_code == 201
    rec = shown_list(site)
    items = [entry.item_id for entry in rec.items]
    forged = rec.token[:-3] + "abc"
    subject = subject_hash(site=site, kind="a", raw_id=ANON)
    late = token_sign(RecToken(placement="home", subject=subject, items=tuple(items),
                               issued=int(time.time()) - 3 * 86400))
    events = [*journey(forged, items), *journey(rec.token, items, anon="a_visitor2")]
    late_events = journey(late, items)
    assert deliver(api.collect, events).status_code == 202
    assert deliver(api.collect, late_events).status_code == 202
    (row,) = attribution_report(site_id=site.pk)
    # The late token still shows its impression and click; its conversions are past the window.
    assert (row.impressions, row.clicks, row.add_to_cart, row.purchases) == (1, 1, 0, 0)


def test_the_bandit_moves_traffic_to_the_variant_that_is_clicked(site, trained):
    placement = Placement.objects.create(site=site, name="home")
    experiment = placement.experiments.create(site=site, name="bandit", slug="bandit",
                                              allocation="thompson")
    experiment.variants.create(name="control", weight=1, is_control=True)
    experiment.variants.create(name="popular", weight=1, overrides={"strategy": "popularity"})
    rows = []
    for n in range(400):
        variant = "popular" if n % 2 else "control"
        rows.append(Attribution(site=site, event_pk=n, kind="impression", ts=_now(),
                                placement="home", variant=variant, experiment_id=experiment.pk,
                                subject="s", issued_at=_now()))
        if variant == "popular" and n % 4 == 1:
            rows.append(Attribution(site=site, event_pk=10_000 + n, kind="click", ts=_now(),
                                    placement="home", variant=variant, subject="s",
                                    experiment_id=experiment.pk, issued_at=_now()))
    Attribution.objects.bulk_create(rows)
    assert tasks.rebalance_bandits() == 1
    experiment.refresh_from_db()
    assert experiment.bandit_weights["popular"] > 0.95
    # Serving follows the new shares (the save retired the memo through the generation).
    answer_cache.site_invalidate(site.pk)
    variants = [recommendation_list(site=site, subject=f"{i:032x}",
                                    generation=answer_cache.generation(site.pk),
                                    request=RecRequest(placement="home")).variant
                for i in range(200)]
    assert variants.count("popular") > 170
    assert services.experiment_rebalance(experiment=experiment) == experiment.bandit_weights


def _now():
    from django.utils import timezone

    return timezone.now()


def test_holdout_gets_the_plain_popular_list(site, trained):
    placement = Placement.objects.create(site=site, name="home", limit=4)
    experiment = placement.experiments.create(site=site, name="holdout", slug="holdout")
    experiment.variants.create(name="holdout", weight=1, is_holdout=True)
    visit(site, [GROUPS[1][0], GROUPS[1][1]], anon_id=ANON)
    rec = shown_list(site)
    assert rec.variant == "holdout"
    assert {entry.reason.kind for entry in rec.items} == {"popular"}


def test_erasing_a_subject_keeps_the_counts_without_them(site, trained, consented_api,
                                                         deliver):
    rec = shown_list(site)
    items = [entry.item_id for entry in rec.items]
    assert deliver(consented_api.collect, journey(rec.token, items)).status_code == 202
    subject = subject_hash(site=site, kind="a", raw_id=ANON)
    from django.utils import timezone

    from recommend.models import Dismissal

    Dismissal.objects.create(site=site, subject=subject, item_id="x", created_at=timezone.now())
    erased = services.subjects_erase(site=site, subjects=[subject])
    assert erased == {"dismissals": 1, "attributions_anonymised": 4}
    assert not Attribution.objects.filter(subject=subject).exists()
    (row,) = attribution_report(site_id=site.pk)
    assert (row.impressions, row.clicks, row.add_to_cart, row.purchases) == (1, 1, 1, 1)
