"""One contract every model passes: shapes, padding, seen items, batch = one, save/load."""

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from recommend.algorithms import (
    ContentModel,
    Hybrid,
    ItemKNN,
    NotFittedError,
    Popularity,
    Recommender,
    Session,
    load_model,
)

N_USERS, N_ITEMS = 60, 40
WORDS = ["lamp", "chair", "oak", "steel", "red", "blue", "green", "round", "tall", "small",
         "soft", "linen", "wool", "glass"]
TEXTS = [" ".join(np.random.default_rng(i).choice(WORDS, 1 + i % 5)) + f" item{i}"
         for i in range(N_ITEMS)]


def interactions() -> sparse.csr_matrix:
    """Random sparse behaviour with a few repeated pairs (weights 1..5)."""
    rng = np.random.default_rng(7)
    users = rng.integers(0, N_USERS, 500)
    items = (users + rng.integers(0, 8, 500)) % N_ITEMS  # users like items near their id
    weights = rng.integers(1, 6, 500).astype(np.float32)
    return sparse.csr_matrix((weights, (users, items)), shape=(N_USERS, N_ITEMS))


MODELS = {
    "item_knn": lambda: ItemKNN(k=10),
    "item_knn_tfidf_shrunk": lambda: ItemKNN(k=10, weighting="tfidf", shrinkage=2.0,
                                             max_user_items=5, heavy_users="damp",
                                             query="log"),
    "item_knn_drop_heavy": lambda: ItemKNN(k=10, max_user_items=12),
    "content": ContentModel,
    "popularity": Popularity,
    "session": lambda: Session(k=10),
    "hybrid": Hybrid,
}


def fitted(name: str) -> Recommender:
    return MODELS[name]().fit(interactions(), item_texts=TEXTS)


@pytest.fixture(params=sorted(MODELS), scope="module")
def model(request: pytest.FixtureRequest) -> Recommender:
    return fitted(request.param)


def test_fit_returns_the_model_and_only_learns_underscored_attributes() -> None:
    for name, make in MODELS.items():
        model = make()
        params = model.get_params()
        assert model.fit(interactions(), item_texts=TEXTS) is model, name
        assert model.get_params() == params, name
        assert model.n_items_ == N_ITEMS


def test_recommend_shapes_types_order(model: Recommender) -> None:
    X = interactions()
    ids, scores = model.recommend(X[:5], n=7)
    assert ids.shape == scores.shape == (5, 7)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    assert (ids >= -1).all() and (ids < N_ITEMS).all()
    real = ids >= 0
    assert real[:, 0].all()
    assert (np.diff(scores, axis=1)[real[:, 1:]] <= 1e-6).all()  # best first
    assert (scores[real] > 0).all() and (scores[~real] == 0).all()
    for row in range(5):
        shown = ids[row][ids[row] >= 0]
        assert len(set(shown.tolist())) == shown.size  # no duplicates


def test_seen_items_are_excluded_by_default(model: Recommender) -> None:
    X = interactions()
    ids, _ = model.recommend(X[:10], n=N_ITEMS)
    for row in range(10):
        assert not set(ids[row].tolist()) & set(X[row].indices.tolist())


def test_extra_exclusions_are_respected(model: Recommender) -> None:
    X = interactions()
    free_ids, _ = model.recommend(X[:3], n=5)
    banned = sparse.csr_matrix((np.ones(3), (np.arange(3), free_ids[:, 0])), shape=(3, N_ITEMS))
    ids, _ = model.recommend(X[:3], n=5, exclude=banned)
    assert not (ids == free_ids[:, :1]).any(axis=1).any()


def test_padding_when_fewer_items_than_asked(model: Recommender) -> None:
    everything = sparse.csr_matrix(np.ones((1, N_ITEMS), dtype=np.float32))
    ids, scores = model.recommend(everything, n=5)
    assert (ids == -1).all() and (scores == 0).all()


def test_one_user_equals_the_same_user_in_a_batch(model: Recommender) -> None:
    X = interactions()
    batch_ids, batch_scores = model.recommend(X[:8], n=6)
    compared = 0
    for row in range(8):
        ids, scores = model.recommend(X[row], n=6)
        np.testing.assert_allclose(scores[0], batch_scores[row], rtol=1e-5, atol=1e-6)
        # Ids agree except where scores tie.
        before = np.diff(batch_scores[row], prepend=np.inf) < -1e-5
        after = np.diff(batch_scores[row], append=np.inf) < -1e-5  # the last may tie the 7th
        distinct = before & after
        assert (ids[0][distinct] == batch_ids[row][distinct]).all()
        compared += distinct.sum()
    assert compared >= 8


def test_save_load_round_trip_without_pickle(model: Recommender, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model")
    assert path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as archive:  # no object arrays inside
        assert all(archive[key].dtype != object for key in archive.files)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    X = interactions()
    for got, want in zip(loaded.recommend(X[:6], n=5), model.recommend(X[:6], n=5), strict=True):
        np.testing.assert_array_equal(got, want)
    assert type(model).load(path).get_params() == model.get_params()


def test_load_refuses_another_model_type(tmp_path: Path) -> None:
    path = fitted("popularity").save(tmp_path / "pop.npz")
    with pytest.raises(TypeError, match="Popularity, not a ItemKNN"):
        ItemKNN.load(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a model file"):
        load_model(tmp_path / "junk.npz")


def test_fitting_twice_gives_the_same_answers() -> None:
    X = interactions()
    for name in MODELS:
        first, second = fitted(name).recommend(X[:5], 5), fitted(name).recommend(X[:5], 5)
        np.testing.assert_array_equal(first[0], second[0], err_msg=name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unfitted_model_says_so(name: str) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        MODELS[name]().recommend(interactions()[:1], n=3)


def test_bad_input_is_refused_with_a_precise_message(model: Recommender) -> None:
    X = interactions()
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        model.recommend(X[:2].toarray(), n=3)
    with pytest.raises(ValueError, match=f"the model was fitted on {N_ITEMS} items"):
        model.recommend(sparse.csr_matrix((1, N_ITEMS + 1)), n=3)
    negative = X[:1].copy()
    negative.data[0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        model.recommend(negative, n=3)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            model.recommend(X[:1], n=n)


def test_fit_refuses_bad_interactions() -> None:
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        ItemKNN().fit(np.ones((3, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        ItemKNN().fit(sparse.csr_matrix(-np.ones((3, 3))))
    with pytest.raises(ValueError, match="weighting must be one of"):
        ItemKNN(weighting="magic").fit(interactions())
    with pytest.raises(ValueError, match="item_texts has 2 texts"):
        ContentModel().fit(interactions(), item_texts=["a", "b"])


@pytest.mark.parametrize("name", ["item_knn", "content", "session", "hybrid"])
def test_similar_items_never_returns_the_item_itself(name: str) -> None:
    model = fitted(name)
    items = np.array([0, 5, 17])
    ids, _ = model.similar_items(items, n=4)
    assert ids.shape == (3, 4) and ids.dtype == np.int32
    assert not (ids == items[:, None]).any()
    assert (ids[:, 0] >= 0).all()
    with pytest.raises(IndexError, match=r"\[0, 40\)"):
        model.similar_items([N_ITEMS], n=3)
    with pytest.raises(TypeError, match="integers"):
        model.similar_items([1.5], n=3)


def test_unseen_visitor_with_empty_history_gets_padding_or_popular_items() -> None:
    empty = sparse.csr_matrix((1, N_ITEMS), dtype=np.float32)
    ids, _ = fitted("item_knn").recommend(empty, n=3)
    assert (ids == -1).all()
    ids, _ = fitted("hybrid").recommend(empty, n=3)
    popular, _ = fitted("popularity").recommend(empty, n=3)
    np.testing.assert_array_equal(ids, popular)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_add_items_widens_every_model_and_keeps_old_answers(name: str) -> None:
    model = fitted(name)  # not the shared fixture: this test changes the model
    X = interactions()
    before_ids, before_scores = model.recommend(X[:4], n=5)
    added = model.add_items(["oak lamp", "new linen chair"])
    np.testing.assert_array_equal(added, [N_ITEMS, N_ITEMS + 1])
    assert model.n_items_ == N_ITEMS + 2
    wide = sparse.hstack([X[:4], sparse.csr_matrix((4, 2))], format="csr")
    ids, scores = model.recommend(wide, n=5)
    if isinstance(model, ContentModel):
        assert (ids >= N_ITEMS).any()  # new items are recommendable by their text at once
    else:
        assert not isinstance(model, Popularity) or (ids < N_ITEMS).all()
    if not isinstance(model, ContentModel | Hybrid):
        np.testing.assert_array_equal(ids, before_ids)
        np.testing.assert_allclose(scores, before_scores)
    with pytest.raises(ValueError, match="one per new item"):
        model.add_items("a string")


def test_content_scores_of_one_user_equal_the_sparse_product() -> None:
    """The serving path (sums of rows in numpy) gives the batch path's scores."""
    content = fitted("content")
    items = np.array([0, 4, 9])
    weights = np.array([1.0, 3.0, 5.0], dtype=np.float32)
    ids, scores = content._scores_one(items, weights)
    row = sparse.csr_matrix((weights, items, [0, 3]), shape=(1, N_ITEMS))
    expected = content._scores(row).toarray()[0]
    assert ids.size and np.array_equal(ids, np.flatnonzero(expected))
    assert np.allclose(scores, expected[ids], rtol=1e-5)
