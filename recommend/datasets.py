"""Reading public data sets straight from their files into matrices for offline evaluation.

No database: rows are parsed with tracking's importers (the same readers as
``import_events``) and mapped to dense user and item indices.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from recommend.evaluation import Interactions
from tracking import importers

FORMATS = ("movielens", "online-retail", "retailrocket", "npz")
# Event weights of the RetailRocket derivative matrix and of our default training.
RETAILROCKET_WEIGHTS = {"view_item": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


@dataclass(frozen=True)
class Dataset:
    """Events (or a matrix without times), item texts where the format has them."""

    name: str
    events: Interactions
    item_texts: list[str] | None
    item_ids: list[str]


class DatasetError(ValueError):
    """The file or folder cannot be read as the given format; the message says why."""


def dataset_read(*, format: str, path: str | Path) -> Dataset:
    """The data set at ``path`` in one of FORMATS."""
    path = Path(path)
    if format not in FORMATS:
        raise DatasetError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DatasetError(f"{path} does not exist")
    if format == "npz":
        return _npz(path)
    try:
        source = importers.source_open(format=format, path=path)
        records = [r for r in source.records() if isinstance(r, importers.Record)]
        catalog = list(source.items()) if format != "retailrocket" else []
    except importers.ImportInputError as error:
        raise DatasetError(str(error)) from None
    return _from_records(format, records, catalog)


def _npz(path: Path) -> Dataset:
    try:
        matrix = sparse.load_npz(path).tocsr()
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: not a scipy sparse .npz matrix ({error})") from None
    coo = matrix.tocoo()
    events = Interactions(users=coo.row.astype(np.int64), items=coo.col.astype(np.int64),
                          weights=coo.data.astype(np.float32), times=None,
                          n_users=matrix.shape[0], n_items=matrix.shape[1])
    return Dataset(name=path.name, events=events, item_texts=None,
                   item_ids=[str(i) for i in range(matrix.shape[1])])


def _from_records(format: str, records: list[importers.Record],
                  catalog: list[importers.CatalogItem]) -> Dataset:
    """Dense indices for users and items; the catalog's items first, in its order."""
    if format == "online-retail":
        records = [r for r in records if r.name == "purchase"]  # refunds are not interest
    item_index: dict[str, int] = {item.external_id: i for i, item in enumerate(catalog)}
    user_index: dict[str, int] = {}
    users = np.empty(len(records), dtype=np.int64)
    items = np.empty(len(records), dtype=np.int64)
    weights = np.empty(len(records), dtype=np.float32)
    times = np.empty(len(records), dtype=np.float64)
    for row, record in enumerate(records):
        users[row] = user_index.setdefault(record.user_id, len(user_index))
        items[row] = item_index.setdefault(record.item_id, len(item_index))
        weights[row] = RETAILROCKET_WEIGHTS.get(record.name, 1.0)
        times[row] = record.ts_ms / 1000.0
    item_ids = list(item_index)
    texts = None
    if catalog:
        by_id = {item.external_id: item_text(item) for item in catalog}
        texts = [by_id.get(item_id, "") for item_id in item_ids]
    events = Interactions(users=users, items=items, weights=weights, times=times,
                          n_users=len(user_index), n_items=len(item_index))
    return Dataset(name=format, events=events, item_texts=texts, item_ids=item_ids)


def item_text(item: importers.CatalogItem) -> str:
    """The text the content model reads: title, category and tags."""
    return " ".join([item.title, item.category, *item.tags]).strip()
