"""CORS for the public endpoints: an origin is allowed when some active site lists it.

A preflight carries no body, so it cannot name its site: it passes for any
origin a site allows, and the view then checks the origin against the very
site named in the body (403 otherwise). sendBeacon's text/plain needs no preflight.
"""

import time

from corsheaders.signals import check_request_enabled
from django.db import InterfaceError, OperationalError
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tracking.models import Site

_CACHE_SECONDS = 10.0
_state: dict[str, object] = {"at": 0.0, "origins": frozenset(), "any": False}


def allowed_origins() -> tuple[frozenset[str], bool]:
    now = time.monotonic()
    if now - float(_state["at"]) > _CACHE_SECONDS:
        origins: set[str] = set()
        try:
            for listed in Site.objects.filter(is_active=True).values_list("allowed_origins",
                                                                          flat=True):
                origins.update(listed or [])
        except (InterfaceError, OperationalError):
            # The database is down: keep the origins last read (the view answers 503, and
            # the browser can read that answer only with these headers); ask again in 1 s.
            _state["at"] = now - _CACHE_SECONDS + 1.0
        else:
            _state.update(at=now, origins=frozenset(origins - {"*"}), any="*" in origins)
    return _state["origins"], bool(_state["any"])  # type: ignore[return-value]


@receiver(check_request_enabled)
def cors_allow_site_origins(sender, request, **kwargs) -> bool:
    origin = request.META.get("HTTP_ORIGIN", "")
    origins, any_origin = allowed_origins()
    return any_origin or origin.rstrip("/") in origins


@receiver([post_save, post_delete], sender=Site)
def _sites_changed(**kwargs) -> None:
    _state["at"] = 0.0
    from tracking.authentication import site_cache_clear

    site_cache_clear()
