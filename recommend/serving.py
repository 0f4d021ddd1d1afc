"""Models loaded in this process: the active version per site, swapped only once loaded.

A request reads the site's active version id (one indexed query); when it differs from
the model held here, the new artifact is loaded first and swapped in after, so serving
never waits on, or breaks for, a version that is still training or fails to load.
New catalog items are added to the held model (content vectors) every
CATALOG_CHECK_SECONDS, without retraining.
"""

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone
from scipy import sparse

from recommend.algorithms import Hybrid, session_rows
from recommend.algorithms.base import model_from_arrays
from recommend.conf import recommend_settings
from recommend.models import ModelVersion
from recommend.selectors import item_text, model_version_active, subject_items
from tracking.models import Item

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model version in memory, with the external id of each item index."""

    version_id: int
    model: Hybrid
    item_ids: list[str]
    catalog_since: datetime | None  # catalog changes after this are checked for new items
    item_index: dict[str, int] = field(init=False)
    catalog_checked: float = field(default_factory=time.monotonic)
    # Item-kNN rows as dicts (neighbour -> similarity scaled by the row's largest), made
    # as serving asks for them: reasons and diversity read a few rows per request.
    _neighbour_rows: dict[int, dict[int, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.item_index = {item_id: i for i, item_id in enumerate(self.item_ids)}

    def neighbours(self, index: int) -> dict[int, float]:
        """Item ``index``'s item-kNN neighbours, similarities scaled to 1 at the largest."""
        row = self._neighbour_rows.get(index)
        if row is None:
            knn = self.model.models_.get("knn")
            if knn is None:
                return {}
            similarity = knn.similarity_
            start, stop = similarity.indptr[index], similarity.indptr[index + 1]
            values = similarity.data[start:stop]
            top = float(values.max()) if values.size else 1.0
            row = dict(zip(similarity.indices[start:stop].tolist(),
                           (values / (top or 1.0)).tolist(), strict=True))
            if len(self._neighbour_rows) >= 100_000:
                self._neighbour_rows.clear()
            self._neighbour_rows[index] = row
        return row


_loaded: dict[int, LoadedModel] = {}
_lock = threading.Lock()


def model_load(version: ModelVersion) -> LoadedModel:
    """Read a version's artifact; raises OSError or ValueError if it cannot be used."""
    path = recommend_settings.MODEL_DIR / version.artifact
    if not version.artifact:
        raise ValueError(f"version {version.pk} has no artifact")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    model = model_from_arrays(arrays, prefix="model/")
    if not isinstance(model, Hybrid):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a Hybrid")
    return LoadedModel(version_id=version.pk, model=model,
                       item_ids=[str(i) for i in arrays["item_ids"]],
                       catalog_since=version.started_at)


_version_checked: dict[int, tuple[int, float]] = {}  # site -> (generation, when)


def active_model(*, site_id: int, generation: int | None = None) -> LoadedModel | None:
    """The site's model to serve: the active version once loaded, else the one held before.

    With the site's cache ``generation`` (an activation bumps it), the database is asked
    for the active version only when the generation moved or VERSION_CHECK_SECONDS passed.
    """
    held = _loaded.get(site_id)
    if generation is not None and held is not None:
        checked = _version_checked.get(site_id)
        if checked is not None and checked[0] == generation and \
                time.monotonic() - checked[1] < recommend_settings.VERSION_CHECK_SECONDS:
            return _catalog_checked(held, site_id)
        _version_checked[site_id] = (generation, time.monotonic())
    version = model_version_active(site_id=site_id)
    if version is not None and (held is None or held.version_id != version.pk):
        try:
            fresh = model_load(version)
        except (OSError, ValueError, KeyError):
            logger.exception("cannot load model version %s; serving the previous one",
                             version.pk)
        else:
            with _lock:
                _loaded[site_id] = held = fresh
    return _catalog_checked(held, site_id)


def _catalog_checked(held: LoadedModel | None, site_id: int) -> LoadedModel | None:
    if held is not None and \
            time.monotonic() - held.catalog_checked >= recommend_settings.CATALOG_CHECK_SECONDS:
        catalog_items_add(held, site_id=site_id)
    return held


def catalog_items_add(loaded: LoadedModel, *, site_id: int) -> int:
    """Add catalog items created or changed since the last check that the model lacks."""
    with _lock:
        checked_at = datetime.now().astimezone()
        items = Item.objects.filter(site_id=site_id, available=True)
        if loaded.catalog_since is not None:
            items = items.filter(updated_at__gte=loaded.catalog_since)
        new = [row for row in items.values_list("external_id", "title", "description",
                                                "category", "tags")
               if row[0] not in loaded.item_index]
        if new:
            indices = loaded.model.add_items([item_text(*row[1:]) for row in new])
            for (external_id, *_), index in zip(new, indices, strict=True):
                loaded.item_ids.append(external_id)
                loaded.item_index[external_id] = int(index)
        loaded.catalog_since = checked_at
        loaded.catalog_checked = time.monotonic()
        return len(new)


@dataclass(frozen=True)
class Recommendation:
    """One recommended item and its blended score."""

    item_id: str
    score: float


def recommendations_for_subject(*, site_id: int, subject: str, n: int = 10,
                                placement: str | None = None,
                                exclude: Iterable[str] = ()) -> list[Recommendation]:
    """The n best items for a (pseudonymous) subject from the active model: their history
    (weighted events of the training window) and their last items as a session."""
    loaded = active_model(site_id=site_id)
    if loaded is None:
        return []
    since = timezone.now() - timedelta(days=recommend_settings.TRAIN_WINDOW_DAYS)
    weights = recommend_settings.EVENT_WEIGHTS
    history = subject_items(site_id=site_id, subject=subject, since=since, weights=weights)
    known = [(loaded.item_index[item], weights[name]) for item, name in history
             if item in loaded.item_index]
    n_items = loaded.model.n_items_
    rows = _row([(i, w) for i, w in known], n_items)
    recent = session_rows([[i for i, _ in known]], n_items)
    banned = _row([(loaded.item_index[i], 1.0) for i in exclude if i in loaded.item_index],
                  n_items)
    ids, scores = loaded.model.recommend(rows, n, placement=placement, recent_rows=recent,
                                         exclude=banned)
    return [Recommendation(loaded.item_ids[i], float(s))
            for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def _row(entries: list[tuple[int, float]], n_items: int) -> sparse.csr_matrix:
    """One users x items row, weights of repeated items summed."""
    items = np.array([i for i, _ in entries], dtype=np.int64)
    weights = np.array([w for _, w in entries], dtype=np.float32)
    return sparse.csr_matrix((weights, (np.zeros(items.size, dtype=np.int64), items)),
                             shape=(1, n_items))


def loaded_models_clear() -> None:
    """Forget every model held in this process (tests, and after a site is erased)."""
    with _lock:
        _loaded.clear()
        _version_checked.clear()
