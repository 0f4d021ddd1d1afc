"""Content, popularity/trending, session and hybrid: the behaviour each one promises."""

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from recommend.algorithms import (
    ContentModel,
    Hybrid,
    ItemKNN,
    Popularity,
    Session,
    blend,
    load_model,
    session_rows,
)

TEXTS = ["oak dining table", "oak side table", "steel desk lamp", "brass floor lamp",
         "wool blanket", "linen blanket"]


def rows(*histories: list[int], n_items: int = 6) -> sparse.csr_matrix:
    data = [(r, item) for r, history in enumerate(histories) for item in history]
    r, c = zip(*data, strict=True) if data else ((), ())
    return sparse.csr_matrix((np.ones(len(data), dtype=np.float32), (r, c)),
                             shape=(len(histories), n_items))


def test_content_recommends_items_that_share_words() -> None:
    model = ContentModel().fit(rows([0], [2], [4]), item_texts=TEXTS)
    ids, _ = model.recommend(rows([0]), n=1)
    assert ids[0, 0] == 1  # the other oak table
    ids, _ = model.similar_items([2], n=1)
    assert ids[0, 0] == 3  # the other lamp


def test_content_new_items_are_recommendable_without_retraining(tmp_path: Path) -> None:
    model = ContentModel().fit(rows([0], [2], [4]), item_texts=TEXTS)
    added = model.add_items(["walnut table with oak legs"])
    np.testing.assert_array_equal(added, [6])
    ids, _ = model.recommend(rows([0, 1], n_items=7), n=1)
    assert ids[0, 0] == 6
    loaded = load_model(model.save(tmp_path / "content"))
    assert loaded.n_items_ == 7
    # The loaded vocabulary vectorises text exactly as the fitted one.
    np.testing.assert_allclose(loaded.transform(TEXTS).toarray(),  # type: ignore[attr-defined]
                               model.transform(TEXTS).toarray())


def test_content_survives_texts_without_words() -> None:
    model = ContentModel().fit(rows([0]), item_texts=[""] * 6)
    ids, _ = model.recommend(rows([0]), n=2)
    np.testing.assert_array_equal(ids, [[-1, -1]])


def test_popularity_counts_users_and_trending_decays() -> None:
    # Item 0: three users long ago; item 1: two users recently.
    X = rows([0], [0], [0, 1], [1], n_items=3)
    day = 86400.0
    times = X.copy()
    times.data = np.array([1 * day, 1 * day, 1 * day, 30 * day, 30 * day])
    ids, scores = Popularity().fit(X).recommend(rows([], n_items=3), n=3)
    np.testing.assert_array_equal(ids, [[0, 1, -1]])
    np.testing.assert_array_equal(scores, [[3, 2, 0]])
    trending = Popularity(half_life=7 * day).fit(X, times=times)
    ids, scores = trending.recommend(rows([], n_items=3), n=2)
    np.testing.assert_array_equal(ids, [[1, 0]])
    assert scores[0, 1] == pytest.approx(3 * 0.5 ** (29 / 7))
    windowed = Popularity(window=10 * day).fit(X, times=times)
    np.testing.assert_array_equal(windowed.recommend(rows([], n_items=3), n=2)[0], [[1, -1]])
    with pytest.raises(ValueError, match="needs fit"):
        Popularity(window=1.0).fit(X)


def test_session_rows_weigh_the_latest_items_most() -> None:
    row = session_rows([[1, 2, 3, 2]], 5, last=2, decay=0.5)
    np.testing.assert_allclose(row.toarray(), [[0, 0, 1.0, 0.5, 0]])  # 2 latest, then 3
    with pytest.raises(IndexError):
        session_rows([[7]], 5)


def test_session_follows_the_latest_item_and_explains_why() -> None:
    # Items 0-1 go together, items 2-3 go together.
    X = rows([0, 1], [0, 1], [2, 3], [2, 3], [0, 1], n_items=4)
    knn = ItemKNN(k=5).fit(X)
    session = Session.from_knn(knn)
    recent = session.rows([[0, 2]])  # viewed 0, then just now 2
    ids, _ = session.recommend(recent, n=2)
    np.testing.assert_array_equal(ids, [[3, 1]])
    assert session.because(recent, 3) == 2 and session.because(recent, 1) == 0
    fresh = Session(k=5).fit(X)
    np.testing.assert_array_equal(fresh.recommend(recent, n=2)[0], ids)


def test_blend_scales_each_model_by_its_best_then_weighs() -> None:
    found = {"knn": (np.array([[2, 0, -1]]), np.array([[4.0, 2.0, 0.0]])),
             "popularity": (np.array([[0, 1, 2]]), np.array([[10.0, 5.0, 1.0]]))}
    scores = blend(found, {"knn": 1.0, "popularity": 0.5}, n_items=3).toarray()
    np.testing.assert_allclose(scores, [[0.5 + 0.5, 0.5 * 0.5, 1.0 + 0.05]])
    assert blend(found, {}, n_items=3).nnz == 0


def test_hybrid_placement_weights_and_content_for_new_items() -> None:
    X = rows([0, 2], [0, 2], [1, 3], [4], [4], [4], n_items=6)
    hybrid = Hybrid(placements={"popular": {"popularity": 1.0}}).fit(X, item_texts=TEXTS)
    user = rows([0])
    knn_ids, _ = hybrid.recommend(user, n=1)
    assert knn_ids[0, 0] == 2
    popular_ids, _ = hybrid.recommend(user, n=1, placement="popular")
    assert popular_ids[0, 0] == 4
    assert hybrid.weights_for("unknown") == hybrid.weights
    # Item 5 has no behaviour: its similar items come from its text.
    ids, _ = hybrid.similar_items([5], n=1)
    assert ids[0, 0] == 4
    with pytest.raises(ValueError, match="unknown blend components"):
        Hybrid(weights={"magic": 1.0}).fit(X)


def test_hybrid_uses_recent_rows_for_session_candidates() -> None:
    X = rows([0, 1], [0, 1], [2, 3], [2, 3], n_items=6)
    hybrid = Hybrid(weights={"knn": 0.0, "session": 1.0}).fit(X)
    recent = session_rows([[2]], 6)
    ids, _ = hybrid.recommend(rows([0]), n=1, recent_rows=recent)
    assert ids[0, 0] == 3


def test_tuning_without_validation_users_falls_back_to_default_weights() -> None:
    from recommend.algorithms.hybrid import DEFAULT_WEIGHTS
    from recommend.datasets import Dataset
    from recommend.evaluation import Interactions, split_random_per_user
    from recommend.offline import weights_tune

    one_each = sparse.identity(4, format="csr", dtype=np.float32)  # nothing to hold out
    split = split_random_per_user(one_each, fraction=0.2, seed=1)
    coo = one_each.tocoo()
    dataset = Dataset(name="tiny", item_texts=None, item_ids=["a", "b", "c", "d"],
                      events=Interactions(coo.row, coo.col, coo.data, None, 4, 4))
    assert weights_tune(dataset, split, users=split.test_users) == (DEFAULT_WEIGHTS, 0.0)


def test_candidate_table_ranks_as_blend_does() -> None:
    from recommend.algorithms.sparse import top_n_rows
    from recommend.offline import CandidateTable

    rng = np.random.default_rng(0)
    found = {}
    for name, width in (("knn", 30), ("content", 20), ("popularity", 10)):
        ids = np.stack([rng.choice(50, width, replace=False) for _ in range(40)]).astype(np.int32)
        scores = np.sort(rng.random((40, width)), axis=1)[:, ::-1].astype(np.float32)
        ids[::7, -5:], scores[::7, -5:] = -1, 0  # some users have fewer candidates
        found[name] = (ids, scores)
    table = CandidateTable.of(found)
    for weights in ({"knn": 1, "content": 0.3, "popularity": 0.1}, {"knn": 1},
                    {"content": 1, "popularity": 0.5}):
        want, _ = top_n_rows(blend(found, weights, n_items=50), 10)
        np.testing.assert_array_equal(table.top_n(weights, 10), want)
