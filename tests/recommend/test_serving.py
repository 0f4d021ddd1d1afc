"""Serving: reasons, rec_token, business rules, cold start, dismissals, takedown, caches."""

import json

import pytest

from recommend import recommending, services
from recommend.caching import answer_cache
from recommend.models import Dismissal, Placement
from recommend.recommending import RecRequest, recommendation_list
from recommend.tokens import token_read
from tests.conftest import make_event
from tests.recommend.conftest import VISITOR, visit
from tests.recommend.test_training import GROUPS, behaviour
from tracking.models import Event, Item
from tracking.services import subject_hash

pytestmark = pytest.mark.django_db


def subject_of(site, anon_id=VISITOR):
    return subject_hash(site=site, kind="a", raw_id=anon_id)


def serve(site, placement="home", **kwargs):
    return recommendation_list(site=site, subject=subject_of(site),
                               request=RecRequest(placement=placement, **kwargs),
                               generation=answer_cache.generation(site.pk))


def test_a_visitor_who_viewed_lamps_gets_lamps_because_of_what_they_viewed(site, trained):
    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    rec = serve(site, limit=3)
    ids = [entry.item_id for entry in rec.items]
    assert len(ids) == 3 and set(ids) <= set(GROUPS[1][2:])  # the group, viewed ones left out
    for entry in rec.items:
        assert entry.reason.kind == "because_viewed"
        assert entry.reason.item_id in GROUPS[1][:2]
        assert entry.reason.text.startswith("Because you viewed Lamps no.")
        assert entry.item.category == "lamps" and entry.item.price is not None
    token = token_read(rec.token)
    assert token.items == tuple(ids) and token.placement == "home"
    assert subject_of(site).startswith(token.subject)
    assert token.model_version == trained.pk == rec.model_version
    assert token_read(rec.token[:-2] + "xx") is None  # a forged token is nobody's


def test_a_new_visitor_gets_the_cold_start_chain(site, trained):
    rec = serve(site, limit=5)
    assert len(rec.items) == 5
    assert {entry.reason.kind for entry in rec.items} <= {"trending", "popular"}
    assert rec.items[0].reason.kind == "trending"  # trending comes before popular


def test_business_rules_of_the_placement(site, trained):
    Placement.objects.create(site=site, name="cheap", exclude_categories=["tables"],
                             price_max=20.0, limit=10, fallback=["popular"])
    visit(site, [GROUPS[0][0], GROUPS[1][0]], name="view_item")
    visit(site, [GROUPS[1][1]], name="purchase", minutes_ago=2)
    rec = serve(site, "cheap")
    items = [entry.item for entry in rec.items]
    assert items and all(item.category != "tables" and item.price <= 20.0 for item in items)
    assert GROUPS[1][1] not in [item.item_id for item in items]  # purchased


def test_only_available_items_and_a_takedown_leaves_every_answer_at_once(site, trained, api,
                                                                          deliver):
    visit(site, [GROUPS[2][0], GROUPS[2][1]])
    first = serve(site, limit=3)
    gone = first.items[0].item_id
    response = deliver(api.client.put, "/api/v1/items",
                       json.dumps({"items": [{"item_id": gone, "available": False}]}),
                       content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {api.secret_key}")
    assert response.status_code == 200 and response.json()["unavailable"] == 1
    after = serve(site, limit=3)
    assert gone not in [entry.item_id for entry in after.items]
    assert len(after.items) == 3


def test_not_interested_removes_the_item_for_good(site, trained, consented_api, deliver):
    anon = "a_visitor1"
    visit(site, [GROUPS[3][0], GROUPS[3][1]], anon_id=anon)
    subject = subject_of(site, anon)
    request = RecRequest(placement="home", limit=3)
    first = recommendation_list(site=site, subject=subject, request=request, generation=0)
    dismissed = first.items[0].item_id
    event = make_event(name="not_interested", items=[{"item_id": dismissed}], anon_id=anon)
    assert deliver(consented_api.collect, [event]).status_code == 202
    assert Dismissal.objects.filter(site=site, subject=subject, item_id=dismissed).exists()
    # For good: even once the event itself is gone (retention), the dismissal holds.
    Event.objects.filter(site=site, name="not_interested").delete()
    for placement in ("home", "product"):
        rec = recommendation_list(site=site, subject=subject, generation=0,
                                  request=RecRequest(placement=placement, limit=10))
        assert dismissed not in [entry.item_id for entry in rec.items]


def test_a_category_cap_and_mmr_spread_the_list_over_categories(site, trained):
    visit(site, [GROUPS[0][0], GROUPS[1][0]])
    plain = serve(site, limit=4, diversity=0.0)
    assert len({e.item.category for e in plain.items}) <= 2
    Placement.objects.create(site=site, name="capped", diversity="category_cap",
                             category_cap=1, limit=4)
    capped = serve(site, "capped")
    assert len({e.item.category for e in capped.items}) == 4
    varied = serve(site, limit=4, diversity=0.9)
    assert len({e.item.category for e in varied.items}) >= 3


def test_similar_items_follow_the_item_and_say_so(site, trained):
    rec = recommendation_list(site=site, subject="", generation=0, personalized=False,
                              request=RecRequest(placement="similar", item=GROUPS[2][0],
                                                 limit=4, similar=True))
    assert [e.item_id for e in rec.items] and \
        {e.item_id for e in rec.items} <= set(GROUPS[2][1:])
    assert all(e.reason.kind == "similar_item" and e.reason.item_id == GROUPS[2][0]
               for e in rec.items)


def test_without_consent_for_personalization_nothing_of_the_visitor_is_read(site, trained):
    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    rec = recommendation_list(site=site, subject=subject_of(site), personalized=False,
                              request=RecRequest(placement="home", limit=4), generation=0)
    assert all(e.reason.kind in ("trending", "popular") for e in rec.items)


def test_context_rules_boost_by_device(site, trained):
    Placement.objects.create(site=site, name="ctx", limit=3, fallback=["popular"],
                             strategy="popularity", context_rules=[
                                 {"when": {"device": ["mobile"]},
                                  "boost": {"category": "chairs"}, "factor": 100}])
    mobile = serve(site, "ctx", device="mobile")
    desktop = serve(site, "ctx", device="desktop")
    assert {e.item.category for e in mobile.items} == {"chairs"}
    assert [e.item_id for e in desktop.items] != [e.item_id for e in mobile.items]


def test_rotation_pushes_down_items_shown_and_not_clicked(site, trained):
    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    before = [e.item_id for e in serve(site, limit=3).items]
    visit(site, [before[0]] * 3, name="view_item_list", minutes_ago=5)
    rotated = [e.item_id for e in serve(site, limit=3, rotation_rate=0.9).items]
    assert rotated[0] != before[0]
    # Only for a while: impressions older than rotation_hours no longer count.
    later = serve(site, limit=3, rotation_rate=0.9, rotation_hours=0.05)
    assert later.items[0].item_id == before[0]


def test_an_impression_followed_by_a_click_does_not_rotate():
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    history = recommending.History(
        impressions={"a": [now - timedelta(hours=2), now - timedelta(hours=1)],
                     "b": [now - timedelta(hours=1)], "c": [now - timedelta(days=3)]},
        clicks={"a": now - timedelta(minutes=90)})
    assert history.unclicked(now - timedelta(hours=24)) == {"a": 1, "b": 1}


def test_next_items_never_repeat_one(site, trained):
    seen: list[str] = []
    after = None
    for _ in range(4):
        rec = serve(site, limit=4, after=after)
        ids = [e.item_id for e in rec.items]
        assert not set(ids) & set(seen)
        seen += ids
        after = token_read(rec.token)
        if not ids:
            break
    assert len(seen) == len(set(seen)) >= 12


def test_a_variant_overrides_the_placement_and_names_itself_in_the_token(site, trained):
    placement = Placement.objects.create(site=site, name="home", limit=3)
    experiment = placement.experiments.create(site=site, name="knn vs hybrid", slug="kvh")
    experiment.variants.create(name="control", weight=0, is_control=True)
    experiment.variants.create(name="knn", weight=1, overrides={"strategy": "popularity"})
    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    rec = serve(site)
    assert rec.variant == "knn" and token_read(rec.token).variant == "knn"
    assert token_read(rec.token).experiment == experiment.pk
    assert all(e.reason.kind == "popular" for e in rec.items)


def test_a_new_model_version_and_new_events_retire_cached_answers(site, trained, api, deliver):
    anon = "a_visitor1_with_a_long_id"
    assert api.consent(anon, personalization=True).status_code == 201
    url = f"/api/v1/recommendations?site={site.public_key}&anon_id={anon}&placement=home"

    def answer() -> dict:
        response = api.client.get(url, HTTP_ORIGIN="https://shop.example")
        assert response.status_code == 200, response.content
        return response.json()

    cold = answer()
    assert answer() == cold  # from the cache: the same token
    events = [make_event(anon_id=anon, items=[{"item_id": GROUPS[1][0]}]),
              make_event(anon_id=anon, items=[{"item_id": GROUPS[1][1]}])]
    assert deliver(api.collect, events).status_code == 202
    warm = answer()
    assert warm["rec_token"] != cold["rec_token"]
    assert warm["items"][0]["reason"]["kind"] == "because_viewed"
    assert answer()["rec_token"] == warm["rec_token"]
    behaviour(site, subjects=8)
    version = deliver(services.site_train, site=site)
    fresh = answer()
    assert fresh["model_version"] == version.pk != warm["model_version"]


def test_answers_come_from_the_cache_without_a_query(site, trained, api,
                                                    django_assert_num_queries):
    anon = "a_visitor1_with_a_long_id"
    url = f"/api/v1/recommendations?site={site.public_key}&anon_id={anon}&placement=home"
    assert api.client.get(url).status_code == 200
    with django_assert_num_queries(0):
        assert api.client.get(url).status_code == 200


def test_catalog_changes_reach_the_process_snapshot(site, trained):
    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    shown = serve(site, limit=3).items[0]
    Item.objects.filter(site=site, external_id=shown.item_id).update(title="Renamed lamp")
    answer_cache.site_invalidate(site.pk)  # what an upsert does after its commit
    assert serve(site, limit=3).items[0].item.title == "Renamed lamp"
    recommending.memos_clear()


def test_cold_start_prefers_what_the_visitors_segment_bought(site, trained):
    from django.utils import timezone

    from profiles.models import Membership, Segment

    segment = Segment.objects.create(site=site, name="Chair people", slug="chair-people")
    members = [subject_hash(site=site, kind="a", raw_id=f"a_member_{i:02d}_long_enough")
               for i in range(3)]
    for n, member in enumerate([*members, subject_of(site)]):
        Membership.objects.create(site=site, segment=segment, subject=member,
                                  since=timezone.now())
        if n < 3:
            visit(site, GROUPS[3][:3], anon_id=f"a_member_{n:02d}_long_enough")
    rec = serve(site, limit=3)
    assert [e.reason.text for e in rec.items] == ["Popular in Chair people"] * 3
    assert {e.item_id for e in rec.items} == set(GROUPS[3][:3])


def test_the_content_strategy_explains_by_category(site, trained):
    Placement.objects.create(site=site, name="content", strategy="content", limit=3)
    visit(site, [GROUPS[2][0]])
    rec = serve(site, "content")
    assert rec.items and rec.items[0].reason.kind == "category_affinity"
    assert rec.items[0].reason.text == "Similar to blankets items you like"


def test_the_history_statement_is_prepared_once_per_connection(site, trained):
    from django.db import connection

    assert connection.vendor == "postgresql"  # the suite runs on PostgreSQL

    def executions() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT generic_plans + custom_plans FROM pg_prepared_statements "
                           "WHERE statement LIKE 'WITH allowed AS %%'")
            return [row[0] for row in cursor.fetchall()]

    visit(site, [GROUPS[1][0], GROUPS[1][1]])
    serve(site, limit=3)
    before = executions()
    rec = serve(site, limit=3)
    assert len(before) == 1 and executions() == [before[0] + 1]  # the same statement again
    assert [e.reason.kind for e in rec.items] == ["because_viewed"] * 3  # the history read
    # Django's own setting is left as it was: nothing else on the connection is prepared.
    assert connection.connection.prepare_threshold is None


def test_dense_neighbour_sums_equal_the_sparse_ones():
    import numpy as np
    from scipy import sparse

    from recommend.algorithms.knn import neighbour_scores, neighbour_sums

    rng = np.random.default_rng(3)
    similarity = sparse.random(300, 300, density=0.1, format="csr", random_state=3,
                               dtype=np.float32)
    items = np.array([3, 17, 250, 17])  # a repeated item counts twice in both
    weights = rng.random(4).astype(np.float32)
    dense_ids, dense = neighbour_scores(similarity, items, weights, dense=True)
    ids, scores = neighbour_scores(similarity, items, weights, dense=False)
    keep = scores > 0
    assert dense_ids.dtype == ids.dtype == np.int32 and dense.dtype == np.float32
    assert np.array_equal(dense_ids, ids[keep]) and np.allclose(dense, scores[keep])
    product = (sparse.csr_matrix((weights, items, [0, 4]), shape=(1, 300)) @ similarity)
    assert np.allclose(product.toarray()[0][ids], scores)
    many = rng.choice(300, 20)  # more rows than are read by slicing each
    many_weights = rng.random(20).astype(np.float32)
    ids, scores = neighbour_scores(similarity, many, many_weights, dense=False)
    summed = np.bincount(many, weights=many_weights, minlength=300)
    assert np.allclose((sparse.csr_matrix(summed) @ similarity).toarray()[0][ids], scores)
    assert np.allclose(neighbour_sums(similarity, many, many_weights)[ids], scores)



@pytest.mark.parametrize("excluded", [0, 30])
def test_the_dense_blend_of_small_catalogs_picks_what_the_sparse_one_picks(monkeypatch, excluded):
    import numpy as np
    from scipy import sparse

    from recommend.algorithms import Hybrid
    from recommend.recommending import Context, History, PlacementConfig, _Ranking
    from recommend.serving import LoadedModel

    rng = np.random.default_rng(5)
    n_items, words = 500, [f"w{i}" for i in range(60)]
    interactions = sparse.random(400, n_items, density=0.03, format="csr", random_state=5,
                                 dtype=np.float32)  # continuous weights: no ties
    texts = [" ".join(rng.choice(words, 4)) for _ in range(n_items)]
    model = Hybrid(candidates=100).fit(interactions, item_texts=texts)
    loaded = LoadedModel(version_id=1, model=model, catalog_since=None,
                         item_ids=[f"i{i}" for i in range(n_items)])
    weighted = [(f"i{i}", float(w)) for i, w in zip(
        rng.choice(n_items, 12), rng.choice([1.0, 3.0, 5.0], 12), strict=True)]

    def candidates(dense_items: int) -> dict[str, tuple[float, str]]:
        monkeypatch.setattr(recommending, "DENSE_ITEMS", dense_items)
        history = History(weighted=weighted, sequence=[item for item, _ in weighted])
        config = PlacementConfig(name="home", weights=dict.fromkeys(
            ["knn", "content", "popularity", "session"], 1.0))  # each leads some items
        ranking = _Ranking(site=None, subject="s", config=config,
                           request=RecRequest(placement="home"), catalog=None,
                           history=history, context=Context(),
                           excluded={f"i{i}" for i in range(excluded)}, personalized=True)
        ranking.add_model(loaded)
        return {item: (c.score, c.component) for item, c in ranking.candidates.items()}

    dense, sparse_ = candidates(n_items), candidates(n_items - 1)
    assert len(dense) == recommending.BLEND_KEEP and dense.keys() == sparse_.keys()
    assert {c for _, c in dense.values()} == {"content", "knn", "popularity", "session"}
    for item, (score, component) in dense.items():
        assert component == sparse_[item][1] and score == pytest.approx(sparse_[item][0])
    assert not {f"i{i}" for i in range(excluded)} & dense.keys()
    # The popularity candidates are the model's own, banned items left out.
    scorer = recommending._ComponentScorer(model, knn=None, known=[], recent=[],
                                           banned=list(range(excluded)), want=40)
    row = sparse.csr_matrix((1, n_items), dtype=np.float32)
    banned = sparse.csr_matrix((np.ones(excluded), (np.zeros(excluded, dtype=int),
                                                   np.arange(excluded))), shape=(1, n_items))
    ids, scores = model.models_["popularity"].recommend(row, 40, exclude=banned)
    mine = scorer._popular()
    assert np.array_equal(mine[0], ids[0][ids[0] >= 0]) and np.allclose(mine[1], scores[0][:40])


def test_event_names_written_into_the_history_statement_are_quoted(site):
    from datetime import timedelta

    from django.utils import timezone

    from recommend import selectors

    odd = "it's {50%}, \"odd\""  # quotes, braces, a comma and a percent sign
    visit(site, ["i1", "i2"], name=odd)
    visit(site, ["i3"], name="view_item")
    since = timezone.now() - timedelta(days=1)
    found = selectors.subject_serving_rows(
        site_id=site.pk, subjects=[subject_of(site)], since=since, names=[odd],
        consent_subjects=None)
    assert sorted((item, name) for item, name, _ in found.events) == [("i1", odd), ("i2", odd)]
