"""Finding the site behind a request: public key in the body, secret key as a Bearer token."""

import time

from django.http import HttpRequest

from tracking.errors import OriginNotAllowed, UnknownKey
from tracking.models import Site
from tracking.services import secret_key_hash

# Sites are read on every request: a short in-process cache spares a query each time.
_CACHE_SECONDS = 10.0
_by_public: dict[str, tuple[float, Site | None]] = {}


def site_for_public_key(key: object) -> Site:
    """The active site with this public key, or 401."""
    if not isinstance(key, str) or not key or len(key) > 64:
        raise UnknownKey('"site" must be the site\'s public key (pk_live_...)', field="site")
    now = time.monotonic()
    hit = _by_public.get(key)
    if hit is None or now - hit[0] > _CACHE_SECONDS:
        site = Site.objects.filter(public_key=key, is_active=True).first()
        if len(_by_public) > 10_000:
            _by_public.clear()
        _by_public[key] = hit = (now, site)
    if hit[1] is None:
        raise UnknownKey("no active site has this public key", field="site")
    return hit[1]


def site_for_secret_key(request: HttpRequest) -> Site:
    """The active site whose secret key is the request's Bearer token, or 401."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnknownKey("send the site's secret key as 'Authorization: Bearer sk_live_...'")
    site = Site.objects.filter(secret_key_hash=secret_key_hash(token.strip()),
                               is_active=True).first()
    if site is None:
        raise UnknownKey("no active site has this secret key")
    return site


def origin_check(site: Site, request: HttpRequest) -> None:
    """403 unless the request's Origin is one of the site's allowed origins."""
    origin = request.META.get("HTTP_ORIGIN")
    if not site.allows_origin(origin):
        shown = origin if origin else "no Origin header"
        raise OriginNotAllowed(f"{shown} is not an allowed origin of this site")


def site_cache_clear() -> None:
    _by_public.clear()
