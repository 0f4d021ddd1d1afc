"""The recsite template library: ``{% load recsite %}``.

``{% recsite_tracker %}`` renders the tracker's script tag and the consent banner for a
site's public key. Settings (in ``settings.RECSITE``, or ``RECSITE_<NAME>`` in the
environment): ``PUBLIC_KEY`` (default: the only active site's key), ``ENDPOINT`` (default:
this server's /api/v1), ``CONSENT_VERSION`` (change it when the banner's texts or purposes
change: visitors are asked again) and ``CONSENT_TEXTS`` (a dict overriding the banner's
texts, which are otherwise Django-translated English).
``{% recommendations placement="home" limit=6 %}`` renders a recommendation widget for the
visitor (recommend/widgets.py).
"""

import logging
from typing import Any

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from recommend.widgets import widget_render
from tracking.models import Site
from tracking.privacy.banners import banner_version_record

register = template.Library()
logger = logging.getLogger(__name__)

CONSENT_VERSION = "2026-11-24"


def _setting(name: str, default: Any = None) -> Any:
    return getattr(settings, "RECSITE", {}).get(name, default)


def consent_texts() -> dict[str, str]:
    """The banner's texts in the active language, with the site's overrides."""
    texts = {
        "title": _("Your privacy choices"),
        "text": _("With your consent we measure how this site is used (analytics) and "
                  "recommend products from what you view (personalization). Necessary "
                  "storage only keeps this choice. You can change it at any time."),
        "reject": _("Reject all"),
        "accept": _("Accept all"),
        "customize": _("Customize"),
        "save": _("Save choices"),
        "purposes": _("What you allow"),
        "necessary": _("Necessary"),
        "analytics": _("Analytics"),
        "personalization": _("Personalization"),
    }
    return {**texts, **(_setting("CONSENT_TEXTS") or {})}


def public_key_default() -> str | None:
    """The configured public key, else the only active site's, else None."""
    key = _setting("PUBLIC_KEY")
    if key:
        return key
    keys = list(Site.objects.filter(is_active=True).values_list("public_key", flat=True)[:2])
    return keys[0] if len(keys) == 1 else None


@register.inclusion_tag("recommend/recsite_tracker.html", takes_context=True)
def recsite_tracker(context: template.Context, key: str | None = None,
                    endpoint: str | None = None, banner: bool = True, stub: bool = True,
                    batch: int | None = None, flush_ms: int | None = None) -> dict[str, Any]:
    """The tracker's script tag and the consent banner (see the module docstring).

    ``stub=False`` leaves out the one inline script (the queue for calls made before the
    tracker loads) for a Content-Security-Policy without nonces; with django-csp's
    ``request.csp_nonce`` it carries the nonce.
    """
    public_key = key or public_key_default()
    if not public_key:
        logger.warning("recsite_tracker: no public key (set RECSITE_PUBLIC_KEY or pass key=)")
    request = context.get("request")
    version, texts = _setting("CONSENT_VERSION", CONSENT_VERSION), consent_texts()
    if banner and public_key:  # which texts this version shows: the receipts' proof
        banner_version_record(public_key=public_key, version=version,
                              language=get_language() or "", texts=texts)
    nonce = getattr(request, "csp_nonce", None)  # django-csp's, lazy: str() makes it
    return {
        "public_key": public_key,
        "endpoint": endpoint or _setting("ENDPOINT") or reverse("collect").rsplit("/", 1)[0],
        "tracker_src": static("tracker/dist/tracker.min.js"),
        "consent_src": static("tracker/dist/consent.min.js"),
        "consent_css": static("tracker/dist/consent.min.css"),
        "consent_config": {"version": version, **texts},
        "banner": banner,
        "stub": stub,
        "nonce": str(nonce) if nonce is not None else None,
        "batch": batch,
        "flush_ms": flush_ms,
    }


@register.simple_tag(takes_context=True)
def recommendations(context: template.Context, placement: str = "home", limit: int | None = None,
                    item: str | None = None, title: str | None = None, key: str | None = None,
                    template: str | None = None, similar: bool = False) -> str:
    """A recommendation widget for the visitor: ``{% recommendations placement="home" limit=6 %}``
    (``item=`` on product pages, with ``similar=True`` for items like it; see
    recommend/widgets.py)."""
    return widget_render(request=context.get("request"), public_key=key or public_key_default(),
                         placement=placement, limit=limit, item=item, title=title,
                         template=template, similar=similar,
                         endpoint=_setting("ENDPOINT") or reverse("collect").rsplit("/", 1)[0])
