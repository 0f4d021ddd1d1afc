"""Request throttles per site key and per client IP, counted in the shared cache.

DRF's SimpleRateThrottle keeps a list of request times per key: at thousands
of requests a second per key that list is the bottleneck. These keep one
counter per fixed window instead (an atomic INCR in Redis), reusing DRF's rate
syntax, its Retry-After answer and its proxy-aware client address.
"""

import hmac
import time

from django.conf import settings
from django.core.cache import cache as default_cache
from rest_framework.throttling import SimpleRateThrottle

from recsite.cache import CACHE_UNAVAILABLE
from tracking.conf import tracking_settings


class FixedWindowThrottle(SimpleRateThrottle):
    cache = default_cache
    timer = time.time
    setting: str = ""  # the name of the tracking setting holding the rate

    def get_rate(self) -> str | None:
        return getattr(tracking_settings, self.setting)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.key}:{window}"
        try:
            count = self.count(key)
        except CACHE_UNAVAILABLE:
            return True  # open while Redis is down: collecting matters more than limiting
        return count <= self.num_requests

    def count(self, key: str) -> int:
        """This window's requests so far, this one included."""
        try:  # one round trip once the window's counter exists
            return self.cache.incr(key)
        except ValueError:  # the window's first request (or a race with another one)
            return 1 if self.cache.add(key, 1, timeout=self.duration + 1) else self.cache.incr(key)

    def wait(self) -> float:
        return max(0.0, self.window_end - self.timer())


class IpRateThrottle(FixedWindowThrottle):
    """Per client address; the address is hashed, so the cache holds no IP."""

    scope = "ip"
    setting = "THROTTLE_IP_RATE"

    def get_cache_key(self, request, view) -> str:
        ident = self.get_ident(request) or ""
        digest = hmac.digest(settings.SECRET_KEY.encode(), ident.encode(), "sha256")
        return f"throttle:ip:{digest.hex()[:24]}"


class SiteKeyRateThrottle(FixedWindowThrottle):
    """Per site: the view sets ``request.recsite_site`` once it knows the key."""

    scope = "key"
    setting = "THROTTLE_KEY_RATE"

    def get_cache_key(self, request, view) -> str | None:
        site = getattr(request, "recsite_site", None)
        return None if site is None else f"throttle:key:{site.pk}"
