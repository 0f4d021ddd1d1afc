"""The answer cache: recommendation lists per subject and placement, in Redis.

Answers of one subject live in one Redis hash (one field per placement and query), so new
events of that subject drop them all with one DEL. Each answer carries the site's
generation; a new model version, a catalog change or a takedown bumps the generation and
so retires every answer of the site at once. A read is one command (a Lua script: the
generation, the answer, and the public endpoints' throttle counters). Without Redis (the
embedded default) the same contract runs on Django's cache, with a generation per subject
too.
"""

import time
from collections.abc import Collection, Sequence
from typing import Any

from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver
from redis.exceptions import NoScriptError

from recsite.cache import COUNTERS_LUA

# One command for a read: the throttle counters (INCR, EXPIRE on the window's first), the
# site's generation and the answer. KEYS: the counters, the generation, the answers' hash;
# ARGV: the number of counters, each counter's lifetime, the answer's field ("" for none).
_READ = COUNTERS_LUA + """
out[n + 1] = redis.call('GET', KEYS[n + 1])
if ARGV[n + 2] ~= '' then out[n + 2] = redis.call('HGET', KEYS[n + 2], ARGV[n + 2]) end
return out
"""


class AnswerCache:
    """Redis-backed when the cache is Redis, else Django's cache API."""

    _read_sha: bytes | None = None
    # (the Redis client or None, the key prefix): Django's ``cache`` is a proxy that looks
    # the backend up in a thread-local store on every attribute read (a few microseconds
    # each, several per request); looked up once, again after a CACHES change.
    _backend: tuple[Any, str] | None = None

    def _resolve(self) -> tuple[Any, str]:
        backend = self._backend
        if backend is None:
            client = getattr(cache, "_cache", None)
            redis = client.get_client(write=True) \
                if client is not None and hasattr(client, "get_client") else None
            backend = self._backend = (redis, cache.key_prefix or "recsite")
        return backend

    def forget_backend(self) -> None:
        """Look the cache backend up again (the CACHES setting changed)."""
        self._backend = None
        self._read_sha = None

    def _redis(self):
        return self._resolve()[0]

    def _key(self, *parts: object) -> str:
        return ":".join([self._resolve()[1], "rec", *map(str, parts)])

    # --- the site generation ------------------------------------------------------

    def generation(self, site_id: int) -> int:
        """The site's current generation (0 until first bumped)."""
        redis = self._redis()
        key = self._key("gen", site_id)
        value = redis.get(key) if redis is not None else cache.get(key)
        return int(value or 0)

    def site_invalidate(self, site_id: int) -> int:
        """Retire every cached answer of the site; returns the new generation."""
        redis = self._redis()
        key = self._key("gen", site_id)
        if redis is not None:
            return int(redis.incr(key))
        cache.add(key, 0, timeout=None)
        return int(cache.incr(key))

    # --- answers ------------------------------------------------------------------

    @property
    def pipelined(self) -> bool:
        """Whether reads run in one Redis round trip (counters included)."""
        return self._redis() is not None

    def get(self, site_id: int, subject: str, field: str | None, *,
            counters: Sequence[tuple[str, int]] = ()) -> tuple[int, bytes | None, list[int]]:
        """(the site's generation, the cached answer or None, the counters' new values)
        in one round trip; each counter (full cache key, lifetime) is incremented.

        ``field`` None reads the generation only. Counters need Redis (``pipelined``).
        """
        redis = self._redis()
        if redis is not None:
            keys = [key for key, _ in counters] + [self._key("gen", site_id),
                                                   self._key("ans", site_id, subject)]
            replies = self._read(redis, keys, [len(counters),
                                               *(seconds for _, seconds in counters),
                                               field or ""])
            counts = [int(value) for value in replies[: len(counters)]]
            generation = int(replies[len(counters)] or 0)
            stored = replies[len(counters) + 1] if field is not None else None
            return generation, _fresh(stored, generation), counts
        if counters:
            raise ValueError("counters need the Redis cache")
        generation = self.generation(site_id)
        if field is None:
            return generation, None, []
        subject_gen = cache.get(self._key("sgen", site_id, subject), 0)
        stored = cache.get(self._key("ans", site_id, subject, subject_gen, field))
        return generation, _fresh(stored, generation), []

    def _read(self, redis: Any, keys: list[str], args: list[object]) -> list:
        """The read script's replies: EVALSHA with its arguments encoded here (redis-py's
        Script object and encoder cost more than the round trip's other Python work), the
        script loaded first when the server does not know it yet."""
        packed = [str(value).encode() for value in (*keys, *args)]
        if self._read_sha is not None:
            try:
                return redis.execute_command("EVALSHA", self._read_sha, len(keys), *packed)
            except NoScriptError:  # a restarted or flushed server: load it again
                pass
        self._read_sha = redis.script_load(_READ).encode()
        return redis.execute_command("EVALSHA", self._read_sha, len(keys), *packed)

    def set(self, site_id: int, subject: str, field: str, answer: bytes, *, generation: int,
            seconds: int) -> None:
        """Keep an answer computed at ``generation`` for ``seconds``."""
        if seconds <= 0:
            return
        stored = b"%d|%d|" % (generation, int(time.time() + seconds)) + answer
        redis = self._redis()
        if redis is not None:
            key = self._key("ans", site_id, subject)
            with redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, field, stored)
                pipe.expire(key, seconds)
                pipe.execute()
            return
        subject_gen = cache.get(self._key("sgen", site_id, subject), 0)
        cache.set(self._key("ans", site_id, subject, subject_gen, field), stored, seconds)

    def subjects_invalidate(self, site_id: int, subjects: Collection[str]) -> None:
        """Drop every cached answer of these subjects (their events changed)."""
        if not subjects:
            return
        redis = self._redis()
        if redis is not None:
            redis.delete(*(self._key("ans", site_id, s) for s in subjects))
            return
        for subject in subjects:
            key = self._key("sgen", site_id, subject)
            cache.add(key, 0, timeout=None)
            cache.incr(key)


def _fresh(stored: bytes | None, generation: int) -> bytes | None:
    """The answer inside a stored value, if it is of this generation and not expired."""
    if not stored:
        return None
    gen_raw, expires_raw, answer = stored.split(b"|", 2)
    if int(gen_raw) != generation or int(expires_raw) < time.time():
        return None
    return answer


answer_cache = AnswerCache()


@receiver(setting_changed, dispatch_uid="recommend.caching.setting_changed")
def _cache_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        answer_cache.forget_backend()
