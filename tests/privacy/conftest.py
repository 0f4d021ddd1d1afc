"""Helpers of the privacy tests: every row and Redis entry that names a subject."""

from collections import defaultdict
from typing import Any

import orjson
from django.apps import apps
from django.core.cache import cache

from tracking.models import Site
from tracking.services import subject_hash


def hashes_of(site: Site, *, anon_id: str | None = None, user_id: str | None = None) -> set[str]:
    found = set()
    if anon_id:
        found.add(subject_hash(site=site, kind="a", raw_id=anon_id))
    if user_id:
        found.add(subject_hash(site=site, kind="u", raw_id=user_id))
    return found


def _text(row: dict[str, Any]) -> str:
    return orjson.dumps(row, default=str).decode()


def rows_naming(needles: set[str]) -> dict[str, set[Any]]:
    """For every table of every app: the primary keys of rows whose any column holds one of
    these strings (a subject hash, a raw id)."""
    found: dict[str, set[Any]] = defaultdict(set)
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        pk = model._meta.pk.attname
        for row in model._base_manager.values():
            text = _text(row)
            if any(needle in text for needle in needles):
                found[model._meta.label].add(row[pk])
    return dict(found)


def redis_entries_naming(needles: set[str]) -> list[str]:
    """Redis keys whose name or value holds one of these strings (Celery's queues included)."""
    redis = cache._cache.get_client(write=True)
    hits = []
    for key in redis.scan_iter(count=1000):
        name = key.decode(errors="replace")
        kind = redis.type(key).decode()
        if kind == "string":
            value = redis.get(key) or b""
        elif kind == "hash":
            value = b" ".join(k + b"=" + v for k, v in redis.hgetall(key).items())
        elif kind == "list":
            value = b" ".join(redis.lrange(key, 0, -1))
        elif kind in ("set", "zset"):
            value = b" ".join(redis.zrange(key, 0, -1) if kind == "zset" else redis.smembers(key))
        else:
            value = b""
        text = name + " " + value.decode(errors="replace")
        if any(needle in text for needle in needles):
            hits.append(name)
    return hits
