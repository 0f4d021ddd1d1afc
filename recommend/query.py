"""Per-request filters and boosters over catalog fields: a small JSON syntax, parsed
into predicates (never evaluated as code).

A filter is an object; its keys must all hold (AND)::

    {"category": {"in": ["lamps", "shades"]}, "price": {"between": [10, 50]},
     "attributes.color": "red", "created": {"within_days": 30}}
    {"or": [{"category": "lamps"}, {"not": {"price": {"gt": 100}}}]}

Fields: ``item_id``, ``title``, ``category``, ``price``, ``currency``, ``available``,
``tags``, ``created`` and ``attributes.<name>``. Operators: ``eq`` (a bare value is
``eq``), ``ne``, ``in``, ``nin``, ``gt``, ``gte``, ``lt``, ``lte``, ``between`` [low, high],
``contains`` (a tag, or text in the title), ``exists`` (true/false) and, for
``created``, ``within_days``. A booster is ``{"if": <filter>, "factor": 2.0}`` (or a list
of them): a matching item's score is multiplied by the factor (0 < factor <= 100).
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

MAX_DEPTH = 6
MAX_NODES = 60
MAX_LIST = 100
MAX_TEXT = 200
MAX_FACTOR = 100.0

FIELDS = ("item_id", "title", "category", "price", "currency", "available", "tags", "created")
NUMERIC = {"price"}
OPERATORS = ("eq", "ne", "in", "nin", "gt", "gte", "lt", "lte", "between", "contains",
             "exists", "within_days")


class QueryError(ValueError):
    """The filter or booster is wrong: ``field`` says where (a dotted path)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


class ItemFields(Protocol):
    item_id: str
    title: str
    category: str
    price: float | None
    currency: str
    available: bool
    tags: tuple[str, ...]
    created: float  # epoch seconds
    attributes: dict[str, Any]


Predicate = Callable[[ItemFields], bool]


@dataclass(frozen=True)
class Booster:
    matches: Predicate
    factor: float


def filter_parse(value: Any, *, field: str = "filter") -> Predicate:
    """A predicate over catalog items from a parsed JSON filter (QueryError if invalid)."""
    counter = [0]
    return _node(value, field, 0, counter)


def boosters_parse(value: Any, *, field: str = "boost") -> list[Booster]:
    """Boosters from a parsed JSON booster or list of boosters."""
    entries = value if isinstance(value, list) else [value]
    if len(entries) > 20:
        raise QueryError(field, f"has {len(entries)} boosters; the limit is 20")
    boosters = []
    for index, entry in enumerate(entries):
        where = f"{field}[{index}]" if isinstance(value, list) else field
        if not isinstance(entry, dict) or set(entry) != {"if", "factor"}:
            raise QueryError(where, 'must be {"if": <filter>, "factor": <number>}')
        factor = entry["factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) \
                or not math.isfinite(factor) or not 0 < factor <= MAX_FACTOR:
            raise QueryError(f"{where}.factor", f"must be a number in (0, {MAX_FACTOR:g}]")
        boosters.append(Booster(filter_parse(entry["if"], field=f"{where}.if"), float(factor)))
    return boosters


def _node(value: Any, field: str, depth: int, counter: list[int]) -> Predicate:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise QueryError(field, f"the query has more than {MAX_NODES} parts")
    if depth > MAX_DEPTH:
        raise QueryError(field, f"nests deeper than {MAX_DEPTH} levels")
    if not isinstance(value, dict) or not value:
        raise QueryError(field, "must be a non-empty object")
    parts = [_key(key, item, field, depth, counter) for key, item in value.items()]
    if len(parts) == 1:
        return parts[0]
    return lambda item: all(part(item) for part in parts)


def _key(key: str, value: Any, field: str, depth: int, counter: list[int]) -> Predicate:
    where = f"{field}.{key[:40]}"
    if key in ("and", "or"):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            raise QueryError(where, f"must be a non-empty list of at most {MAX_LIST} filters")
        parts = [_node(v, f"{where}[{i}]", depth + 1, counter) for i, v in enumerate(value)]
        if key == "and":
            return lambda item: all(part(item) for part in parts)
        return lambda item: any(part(item) for part in parts)
    if key == "not":
        inner = _node(value, where, depth + 1, counter)
        return lambda item: not inner(item)
    getter = _getter(key, where)
    if isinstance(value, dict):
        if not value:
            raise QueryError(where, "must name an operator, e.g. {\"eq\": ...}")
        tests = [_operator(op, arg, key, f"{where}.{str(op)[:20]}") for op, arg in value.items()]
    else:
        tests = [_operator("eq", value, key, where)]

    def matches(item: ItemFields) -> bool:
        found = getter(item)
        return all(test(found) for test in tests)

    return matches


def _getter(key: str, where: str) -> Callable[[ItemFields], Any]:
    if key.startswith("attributes."):
        name = key.removeprefix("attributes.")
        if not name or len(name) > 64:
            raise QueryError(where, "names no attribute")
        return lambda item: item.attributes.get(name) if item.attributes else None
    if key not in FIELDS:
        raise QueryError(where, f"is not a field ({', '.join(FIELDS)}, attributes.<name>)")
    return lambda item: getattr(item, key)


def _scalar(value: Any, where: str) -> str | float | bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise QueryError(where, "must be a finite number")
        return float(value)
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise QueryError(where, f"is longer than {MAX_TEXT} characters")
        return value
    raise QueryError(where, "must be a string, a number, true, false or null")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise QueryError(where, "must be a number")
    return float(value)


def _values(value: Any, where: str) -> frozenset:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise QueryError(where, f"must be a list of at most {MAX_LIST} values")
    return frozenset(_scalar(v, f"{where}[{i}]") for i, v in enumerate(value))


def _equal(found: Any, wanted: Any) -> bool:
    if isinstance(found, list | tuple):
        return wanted in found
    if isinstance(found, int | float) and not isinstance(found, bool) \
            and isinstance(wanted, float):
        return float(found) == wanted
    return found == wanted


def _operator(op: str, arg: Any, key: str, where: str) -> Callable[[Any], bool]:
    if op not in OPERATORS:
        raise QueryError(where, f"is not an operator ({', '.join(OPERATORS)})")
    if op in ("eq", "ne"):
        wanted = _scalar(arg, where)
        if op == "eq":
            return lambda found: _equal(found, wanted)
        return lambda found: not _equal(found, wanted)
    if op in ("in", "nin"):
        options = _values(arg, where)

        def member(found: Any) -> bool:
            if isinstance(found, list | tuple):
                return any(v in options for v in found)
            return (float(found) if isinstance(found, int) and not isinstance(found, bool)
                    else found) in options

        return member if op == "in" else (lambda found: not member(found))
    if op == "exists":
        if not isinstance(arg, bool):
            raise QueryError(where, "must be true or false")
        return lambda found: (found not in (None, "", [], ())) == arg
    if op == "contains":
        needle = _scalar(arg, where)
        if not isinstance(needle, str):
            raise QueryError(where, "must be a string")
        lowered = needle.lower()
        return lambda found: (lowered in found.lower() if isinstance(found, str)
                              else isinstance(found, list | tuple) and needle in found)
    if op == "within_days":
        if key != "created":
            raise QueryError(where, "applies to created only")
        seconds = _number(arg, where) * 86400
        return lambda found: isinstance(found, float) and time.time() - found <= seconds
    if op == "between":
        if not isinstance(arg, list) or len(arg) != 2:
            raise QueryError(where, "must be [low, high]")
        low, high = _number(arg[0], f"{where}[0]"), _number(arg[1], f"{where}[1]")
        if low > high:
            raise QueryError(where, "low must not exceed high")
        return lambda found: _is_number(found) and low <= found <= high
    bound = _number(arg, where)
    compare = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__,
               "lte": float.__le__}[op]
    return lambda found: _is_number(found) and compare(float(found), bound)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
