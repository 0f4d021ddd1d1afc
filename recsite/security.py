"""HTTP hardening shared by the whole server: the Content-Security-Policy and the client's
address for the admin's brute-force protection.

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings (django-csp): scripts only
from this server or with the request's nonce, nothing inline, no eval. Pages whose own
markup carries inline styles (the admin's charts, the API docs, the landing page) may use
them; the JSON API gets no policy (a JSON answer is not a document, and collect is the
hottest path).
"""

from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts
from django.http import HttpRequest, HttpResponseBase
from rest_framework.throttling import BaseThrottle

NO_POLICY_PREFIXES = ("/api/v1/",)
INLINE_STYLE_PREFIXES = ("/admin/", "/api/docs/")
INLINE_STYLE_PATHS = ("/",)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, skipping the JSON API and relaxing style-src where the
    markup needs inline styles."""

    def process_request(self, request: HttpRequest) -> None:
        if not request.path_info.startswith(NO_POLICY_PREFIXES):
            super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponseBase
                         ) -> HttpResponseBase:
        if request.path_info.startswith(NO_POLICY_PREFIXES):
            return response
        return super().process_response(request, response)

    def get_policy_parts(self, request: HttpRequest, response: HttpResponseBase,
                         report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        path = request.path_info
        if parts.update is None and (path in INLINE_STYLE_PATHS
                                     or path.startswith(INLINE_STYLE_PREFIXES)):
            parts.update = {"style-src": [UNSAFE_INLINE]}
        return parts


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the API throttles see it (``REST_FRAMEWORK["NUM_PROXIES"]``
    trusted proxies in front; with none, X-Forwarded-For is ignored, so it cannot be
    forged to dodge a lockout)."""
    return BaseThrottle().get_ident(request)
