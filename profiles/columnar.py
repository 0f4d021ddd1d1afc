"""The full recompute, column by column: every event of a site in, profile columns out.

The same definitions as ``ProfileState.add_rows`` (the incremental fold), written
with numpy over all rows at once: a million profiles cost seconds instead of
minutes. Pure (numpy and orjson, no ORM); ``tests/profiles`` checks that both
give the same profiles on real data.

Outputs are ready for COPY's text format: sets as sorted, space-separated text,
maps as JSON text (COPY escapes applied by the writer).
"""

from dataclasses import dataclass
from itertools import compress
from typing import Any

import numpy as np
import orjson

from profiles.rfm import NO_TIME
from profiles.state import DAY_US, PURCHASE, RATING, REFUND, FoldRules, key_token


@dataclass
class RowColumns:
    """Event rows as columns; string columns are lists (None where absent)."""

    owner: list[str]
    alias: list[str | None]  # the row's subject where it is not the owner (first rows)
    identified: np.ndarray  # bool: the row's (non-junk) user subject is its owner
    session: list[str | None]  # the session key (first rows)
    name: list[str]
    first: np.ndarray  # bool: item_index == 0
    ts: np.ndarray  # int64 microseconds
    value: np.ndarray  # float64, NaN where null
    engaged_ms: np.ndarray  # int64, 0 where null
    device: list[str | None]
    category: list[str | None]
    purchase_key: list[str | None]  # purchase rows only


@dataclass
class ProfileColumns:
    """One element per profile, in the order of ``subject``."""

    subject: list[str]
    identified: np.ndarray
    aliases: np.ndarray  # object: text
    first_seen: np.ndarray
    last_seen: np.ndarray
    last_purchase: np.ndarray  # NO_TIME without purchase
    events: np.ndarray
    sessions: np.ndarray
    session_keys: np.ndarray
    active_days: np.ndarray
    days: np.ndarray
    purchases: np.ndarray
    purchase_keys: np.ndarray
    monetary: np.ndarray
    engaged_ms: np.ndarray
    by_type: np.ndarray  # object: JSON text
    devices: np.ndarray
    affinity: np.ndarray


def codes_of(values: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Integer codes in order of first appearance, and the distinct values."""
    distinct = list(dict.fromkeys(values))
    index = {value: code for code, value in enumerate(distinct)}
    return np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=len(values)), \
        distinct


def sorted_codes(values: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """Integer codes that sort like the values themselves, and the distinct values."""
    if not values:
        return np.zeros(0, dtype=np.int64), []
    try:  # ASCII (subject hashes, session keys): numpy sorts the bytes, much faster
        width = max(map(len, values))
        array = np.array(values, dtype=f"S{width}")
    except (UnicodeEncodeError, TypeError, ValueError):
        distinct = sorted(set(values))
        index = {value: code for code, value in enumerate(distinct)}
        return np.fromiter(map(index.__getitem__, values), dtype=np.int64,
                           count=len(values)), distinct
    distinct_bytes, codes = np.unique(array, return_inverse=True)
    return codes.astype(np.int64), [v.decode() for v in distinct_bytes.tolist()]


def chosen(values: list[Any], mask: np.ndarray) -> list[Any]:
    return list(compress(values, mask.tolist()))


def present(values: list[Any]) -> np.ndarray:
    """Where a column holds a non-empty value."""
    return np.fromiter(map(bool, values), dtype=bool, count=len(values))


def profiles_from_rows(rows: RowColumns, rules: FoldRules) -> ProfileColumns:
    """Every owner's profile state from all of its rows."""
    # Owners numbered in their sort order: the rows go out (and into the table's unique
    # index) in that order, which makes the inserts cheap.
    owner, subjects = sorted_codes(rows.owner)
    n = len(subjects)
    first = rows.first
    ts = rows.ts
    first_seen = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_seen, owner, ts)
    last_seen = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last_seen, owner, ts)
    events = np.bincount(owner[first], minlength=n).astype(np.int64)
    identified = np.bincount(owner[first & rows.identified], minlength=n) > 0
    engaged = np.zeros(n, dtype=np.int64)
    np.add.at(engaged, owner[first], rows.engaged_ms[first])

    name_codes, names = codes_of(rows.name)
    purchase = name_codes == names.index(PURCHASE) if PURCHASE in names else np.zeros_like(first)
    refund = name_codes == names.index(REFUND) if REFUND in names else np.zeros_like(first)
    values = np.nan_to_num(rows.value, nan=0.0)
    monetary = np.zeros(n)
    np.add.at(monetary, owner[purchase], values[purchase])
    np.subtract.at(monetary, owner[refund], values[refund])
    last_purchase = np.full(n, NO_TIME, dtype=np.int64)
    np.maximum.at(last_purchase, owner[purchase], ts[purchase])

    has_session = first & present(rows.session)
    sessions, session_keys = _key_sets(n, owner[has_session],
                                       *sorted_codes(chosen(rows.session, has_session)))
    day = ts[first] // DAY_US
    days, day_text = _key_sets(n, owner[first], day - day.min() if day.size else day,
                               [str(d) for d in range(int(day.min()), int(day.max()) + 1)]
                               if day.size else [])
    keys = [None if k is None else key_token(k) for k in rows.purchase_key]
    purchases, purchase_keys = _key_sets(n, owner[purchase],
                                         *sorted_codes(chosen(keys, purchase)))
    has_alias = first & present(rows.alias)
    _, aliases = _key_sets(n, owner[has_alias], *sorted_codes(chosen(rows.alias, has_alias)))

    by_type = _count_maps(n, owner[first], name_codes[first], names)
    has_device = first & present(rows.device)
    device_codes, devices = codes_of(chosen(rows.device, has_device))
    device_maps = _count_maps(n, owner[has_device], device_codes, devices)
    affinity = _affinity_maps(rows, rules, owner, name_codes, names, values, last_seen, n)
    return ProfileColumns(
        subject=subjects, identified=identified, aliases=aliases, first_seen=first_seen,
        last_seen=last_seen, last_purchase=last_purchase, events=events, sessions=sessions,
        session_keys=session_keys, active_days=days, days=day_text, purchases=purchases,
        purchase_keys=purchase_keys, monetary=monetary, engaged_ms=engaged,
        by_type=by_type, devices=device_maps, affinity=affinity)


def _key_sets(n: int, owners: np.ndarray, codes: np.ndarray, distinct: list[Any]
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per owner: how many distinct keys, and them sorted, space-separated."""
    width = max(len(distinct), 1)
    pairs, _ = np.unique(owners * width + codes, return_counts=True)  # the sorting path
    pair_owner, pair_key = pairs // width, pairs % width
    counts = np.bincount(pair_owner, minlength=n).astype(np.int64)
    text = np.array(distinct, dtype=object)[pair_key] if len(pairs) else np.array([], object)
    return counts, _joined(n, pair_owner, text, " ", counts)


def _joined(n: int, pair_owner: np.ndarray, text: np.ndarray, separator: str,
            counts: np.ndarray) -> np.ndarray:
    """Per owner, its pairs' texts joined (pairs sorted by owner); '' for none."""
    out = np.full(n, "", dtype=object)
    single = counts[pair_owner] == 1
    out[pair_owner[single]] = text[single]
    many = np.flatnonzero(counts > 1)
    if many.size:
        starts = np.searchsorted(pair_owner, many)
        parts = text.tolist()
        for owner, start, count in zip(many.tolist(), starts.tolist(), counts[many].tolist(),
                                       strict=True):
            out[owner] = separator.join(parts[start:start + count])
    return out


def _json_key(value: str) -> str:
    return orjson.dumps(value).decode()


def _count_maps(n: int, owners: np.ndarray, codes: np.ndarray, distinct: list[str]
                ) -> np.ndarray:
    """Per owner, a JSON object of how many rows had each value."""
    width = max(len(distinct), 1)
    pairs, counts = np.unique(owners * width + codes, return_counts=True)
    pair_owner, pair_key = pairs // width, pairs % width
    keys = np.array([_json_key(v) + ": " for v in distinct], dtype=object)
    text = keys[pair_key] + np.array([str(c) for c in counts.tolist()], dtype=object) \
        if len(pairs) else np.array([], dtype=object)
    return _braced(n, pair_owner, text)


def _braced(n: int, pair_owner: np.ndarray, text: np.ndarray) -> np.ndarray:
    per_owner = np.bincount(pair_owner, minlength=n)
    return "{" + _joined(n, pair_owner, text, ", ", per_owner) + "}"


def _affinity_maps(rows: RowColumns, rules: FoldRules, owner: np.ndarray,
                   name_codes: np.ndarray, names: list[str], values: np.ndarray,
                   last_seen: np.ndarray, n: int) -> np.ndarray:
    """Per owner, category scores decayed to its last event, as a JSON object."""
    weight_of_name = np.array([rules.weights.get(name, 0.0) for name in names])
    weight = weight_of_name[name_codes]
    if RATING in names:
        rating = name_codes == names.index(RATING)
        weight[rating] = np.maximum(rows.value[rating], 0.0) / 2.5
        weight[rating & np.isnan(rows.value)] = 0.0
    keep = present(rows.category) & (weight > 0.0)
    category_codes, categories = codes_of(chosen(rows.category, keep))
    owners = owner[keep]
    decayed = weight[keep] * np.exp2((rows.ts[keep] - last_seen[owners]) / rules.half_life_us)
    width = max(len(categories), 1)
    pairs, inverse = np.unique(owners * width + category_codes, return_inverse=True)
    scores = np.bincount(inverse, weights=decayed, minlength=len(pairs))
    keys = np.array([_json_key(c) + ": " for c in categories], dtype=object)
    # numpy writes the shortest text that reads back as the same float, as repr does.
    text = keys[pairs % width] + scores.astype(str).astype(object) if len(pairs) \
        else np.array([], dtype=object)
    return _braced(n, pairs // width, text)
