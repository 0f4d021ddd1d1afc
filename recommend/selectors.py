"""Reads of the recommend app: training data from events and the catalog, model versions."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from scipy import sparse

from recommend.evaluation import Interactions, latest_per_pair
from recommend.models import ModelVersion
from tracking.models import Event, Item, Site

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TrainingData:
    """A site's events as matrix inputs, with the ids behind the indices."""

    events: Interactions  # one row per event: subject index, item index, weight, seconds
    item_ids: list[str]  # external item id of each item index (catalog first)
    item_texts: list[str]
    data_from: datetime | None
    data_to: datetime | None

    @property
    def n_events(self) -> int:
        return int(self.events.users.size)

    def matrix(self) -> sparse.csr_matrix:
        """Subjects x items, event weights summed per pair."""
        return self.events.matrix()

    def times(self) -> sparse.csr_matrix:
        """Subjects x items, each pair's latest event time in seconds."""
        e = self.events
        return latest_per_pair(e.users, e.items, e.times, shape=(e.n_users, e.n_items))


def training_data_read(*, site: Site, since: datetime, weights: dict[str, float],
                       progress: Progress | None = None, chunk_size: int = 20_000
                       ) -> TrainingData:
    """Events of the site since ``since`` with a weighted name and an item, and its catalog."""
    catalog = list(Item.objects.filter(site=site).order_by("id").values_list(
        "external_id", "title", "description", "category", "tags"))
    item_index = {row[0]: i for i, row in enumerate(catalog)}
    texts = [item_text(title, description, category, tags)
             for _, title, description, category, tags in catalog]
    subject_index: dict[str, int] = {}
    subjects, items, names, seconds = [], [], [], []
    rows = (Event.objects.filter(site=site, ts__gte=since, name__in=list(weights))
            .exclude(item_id="").order_by().values_list("subject", "item_id", "name", "ts"))
    for count, (subject, item_id, name, ts) in enumerate(rows.iterator(chunk_size=chunk_size), 1):
        subjects.append(subject_index.setdefault(subject, len(subject_index)))
        if item_id not in item_index:
            item_index[item_id] = len(item_index)
            texts.append("")
        items.append(item_index[item_id])
        names.append(name)
        seconds.append(ts.timestamp())
        if progress is not None and count % chunk_size == 0:
            progress(count)
    weight_of = np.array([weights[name] for name in names], dtype=np.float32)
    times = np.array(seconds, dtype=np.float64)
    events = Interactions(users=np.array(subjects, dtype=np.int64),
                          items=np.array(items, dtype=np.int64), weights=weight_of,
                          times=times, n_users=len(subject_index), n_items=len(item_index))
    first, last = (times.min(), times.max()) if times.size else (None, None)
    return TrainingData(events=events, item_ids=list(item_index), item_texts=texts,
                        data_from=_datetime(first), data_to=_datetime(last))


def item_text(title: str, description: str, category: str, tags: object) -> str:
    """The text the content model reads for a catalog item."""
    words = [str(tag) for tag in tags] if isinstance(tags, list) else []
    return " ".join(part for part in (title, description, category, *words) if part)


def _datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(float(seconds), tz=UTC)


def model_version_active(*, site_id: int) -> ModelVersion | None:
    """The site's active model version, if it has one."""
    return ModelVersion.objects.filter(site_id=site_id, is_active=True).first()


def subject_items(*, site_id: int, subject: str, since: datetime, weights: dict[str, float],
                  limit: int = 500) -> list[tuple[str, str]]:
    """A subject's latest (item id, event name) pairs with a weighted name, oldest first."""
    rows = (Event.objects.filter(site_id=site_id, subject=subject, ts__gte=since,
                                 name__in=list(weights)).exclude(item_id="")
            .order_by("-ts", "-id").values_list("item_id", "name")[:limit])
    return list(reversed(rows))
