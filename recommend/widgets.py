"""The recommendation widget of ``{% recommendations %}``: the visitor's list rendered with
the data attributes the tracker reads (impressions, clicks) and a "not interested" control.

The visitor is the tracker's ``rs_aid`` cookie (a first-party cookie, sent to the Django
site that renders the page); without it the list is not personalized. The markup comes
from ``recsite/recommendations.html``, overridable the Django way (a template of that
name earlier in the template path), or per tag with ``template=``.
"""

import logging
import re
from typing import Any

import orjson
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.utils.safestring import SafeString

from recommend.params import ANON_RE, cache_field
from recommend.recommending import RecRequest, recommendations_answer
from tracking.models import Site
from tracking.services import subject_hash

logger = logging.getLogger(__name__)
DEFAULT_TEMPLATE = "recsite/recommendations.html"
_ASSETS_SENT = "_recsite_widget_assets"
# What a link or image may point to: an http(s) URL or a path on this site. Anything else
# (javascript:, data:, vbscript:, "//host" ...) becomes "" here, whatever the catalog holds.
_SAFE_URL = re.compile(r"^(?:https?://|/(?![/\\]))", re.IGNORECASE)


def safe_url(url: object) -> str:
    """The URL if a link may point to it, else ""."""
    return url if isinstance(url, str) and _SAFE_URL.match(url) else ""


def widget_render(*, request: HttpRequest | None, public_key: str | None, placement: str,
                  limit: int | None = None, item: str | None = None, title: str | None = None,
                  template: str | None = None, endpoint: str = "/api/v1",
                  similar: bool = False) -> SafeString:
    """The widget's HTML (empty, and logged, when it cannot be made: never a broken page).

    ``similar`` lists the items most like ``item`` (personalized for a known visitor).
    """
    try:
        context = widget_context(request=request, public_key=public_key, placement=placement,
                                 limit=limit, item=item, title=title, endpoint=endpoint,
                                 similar=similar)
    except Exception:
        logger.exception("recommendations widget %r could not be rendered", placement)
        return SafeString("")
    if context is None:
        return SafeString("")
    return render_to_string(template or DEFAULT_TEMPLATE, context, request=request)


def widget_context(*, request: HttpRequest | None, public_key: str | None, placement: str,
                   limit: int | None, item: str | None, title: str | None,
                   endpoint: str, similar: bool = False) -> dict[str, Any] | None:
    site = Site.objects.filter(public_key=public_key, is_active=True).first() \
        if public_key else None
    if site is None:
        logger.warning("recommendations widget: no site (set RECSITE_PUBLIC_KEY or key=)")
        return None
    anon_id = request.COOKIES.get("rs_aid", "") if request is not None else ""
    personal = bool(ANON_RE.match(anon_id))
    subject = subject_hash(site=site, kind="a", raw_id=anon_id) if personal else ""
    query = {"placement": placement, "limit": str(limit or ""), "item": item or "",
             "personalized": "1" if personal else "0"}
    body = recommendations_answer(
        site=site, subject=subject, personalized=personal,
        cache_field=cache_field(query, extra="similar" if similar else ""),
        request=RecRequest(placement=placement, limit=limit, item=item,
                           similar=similar and bool(item)))
    answer = orjson.loads(body)
    first = request is not None and not getattr(request, _ASSETS_SENT, False)
    if request is not None:
        setattr(request, _ASSETS_SENT, True)
    return {
        "placement": placement, "title": title if title is not None else answer["title"],
        "items": [{**item, "url": safe_url(item.get("url")),
                   "image_url": safe_url(item.get("image_url"))} for item in answer["items"]],
        "rec_token": answer["rec_token"],
        "variant": answer["variant"] or "", "heading_id": f"recsite-{placement}-title",
        "assets": first, "css": static("recommend/widget.css"),
        "js": static("recommend/widget.js"), "site_key": site.public_key, "endpoint": endpoint,
    }
