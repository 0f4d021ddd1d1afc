"""Request throttles per site key and per client IP, counted in the shared cache.

DRF's SimpleRateThrottle keeps a list of request times per key: at thousands
of requests a second per key that list is the bottleneck. These keep one
counter per fixed window instead (an atomic INCR in Redis), reusing DRF's rate
syntax, its Retry-After answer and its proxy-aware client address.
"""

import functools
import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache as default_cache
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.throttling import SimpleRateThrottle

from recsite.cache import CACHE_UNAVAILABLE
from tracking.conf import tracking_settings


@dataclass(frozen=True)
class WindowCounter:
    name: str  # the cache key of this window's counter, as allow_request names it
    key: str  # the same, as stored (with the cache's prefix and version)
    seconds: int  # its lifetime
    limit: int
    wait: float  # until the window ends, by the throttle's clock


class FixedWindowThrottle(SimpleRateThrottle):
    cache = default_cache
    timer = time.time
    setting: str = ""  # the name of the tracking setting holding the rate

    def get_rate(self) -> str | None:
        return getattr(tracking_settings, self.setting)

    def counter(self, request, view) -> WindowCounter | None:
        """This window's counter for the request, or None when the throttle does not apply."""
        if self.rate is None:
            return None
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return None
        now = self.timer()
        window = int(now // self.duration)
        name = f"{self.key}:{window}"
        return WindowCounter(name=name, key=self.cache.make_key(name),
                             seconds=int(self.duration) + 1, limit=self.num_requests,
                             wait=max(0.0, (window + 1) * self.duration - now))

    def allow_request(self, request, view) -> bool:
        counter = self.counter(request, view)
        if counter is None:
            return True
        self.window_end = self.timer() + counter.wait
        try:
            count = self.count(counter.name)
        except CACHE_UNAVAILABLE:
            return True  # open while Redis is down: collecting matters more than limiting
        return count <= self.num_requests

    def count(self, key: str) -> int:
        """This window's requests so far, this one included."""
        return window_count(self.cache, key, int(self.duration) + 1)

    def wait(self) -> float:
        return max(0.0, self.window_end - self.timer())


class IpRateThrottle(FixedWindowThrottle):
    """Per client address; the address is hashed, so the cache holds no IP."""

    scope = "ip"
    setting = "THROTTLE_IP_RATE"

    def get_cache_key(self, request, view) -> str:
        return ip_cache_key(settings.SECRET_KEY, self.get_ident(request) or "")


@functools.lru_cache(maxsize=4096)  # a visitor's address comes back with each batch
def ip_cache_key(secret: str, ident: str) -> str:
    """The per-IP counter's name: a keyed hash of the address, never the address."""
    digest = hmac.digest(secret.encode(), ident.encode(), "sha256")
    return f"throttle:ip:{digest.hex()[:24]}"


class SiteKeyRateThrottle(FixedWindowThrottle):
    """Per site: the view sets ``request.recsite_site`` once it knows the key."""

    scope = "key"
    setting = "THROTTLE_KEY_RATE"

    def get_cache_key(self, request, view) -> str | None:
        site = getattr(request, "recsite_site", None)
        return None if site is None else f"throttle:key:{site.pk}"


# --- counted in another read's round trip -------------------------------------------
# The hottest endpoints count their throttles in the same Redis command as the read they
# need anyway (collect: the visitors' consent states; recommendations: the cached answer):
# the same keys, windows and limits as allow_request, so the budgets are shared.


def counters_for(request: HttpRequest, view: object,
                 throttles: list[FixedWindowThrottle]) -> list[WindowCounter]:
    """This window's counter of each throttle that applies to the request."""
    return [c for c in (throttle.counter(request, view) for throttle in throttles) if c]


def counts_check(counters: list[WindowCounter], counts: list[int]) -> None:
    """429 (with the wait) when a counter went past its limit."""
    for counter, count in zip(counters, counts, strict=True):
        if count > counter.limit:
            raise Throttled(wait=counter.wait)


def window_count(cache: Any, key: str, seconds: int) -> int:
    """Count one more request in this window's counter (made to live ``seconds``)."""
    try:  # one round trip once the window's counter exists
        return cache.incr(key)
    except ValueError:  # the window's first request (or a race with another one)
        return 1 if cache.add(key, 1, timeout=seconds) else cache.incr(key)


def counted_get_many(counters: list[WindowCounter], keys: Iterable[str]
                     ) -> tuple[list[int], dict[str, Any]]:
    """Count these windows and read these cache keys: one round trip on Redis
    (``recsite.cache.RedisCache``), one call each on other caches. While Redis is down
    the counters stay open (0) and nothing is read: collecting matters more than limiting.
    """
    cache = default_cache
    keys = list(keys)
    try:
        if hasattr(cache, "count_and_get_many"):
            return cache.count_and_get_many([(c.name, c.seconds) for c in counters], keys)
        counts = [window_count(cache, c.name, c.seconds) for c in counters]
        return counts, cache.get_many(keys)
    except CACHE_UNAVAILABLE:
        return [0] * len(counters), {}
