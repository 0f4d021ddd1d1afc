"""The WSGI application: Django's handler, with a shorter middleware chain for the hot API.

Every page view of every site posts to collect and most ask for recommendations, so
these are the hottest paths by far, and they need none of the middleware that serves
people with a browser session: sessions, authentication, messages, CSRF (the API's views
are DRF views without session authentication: they take a site key, never a cookie), the
admin's login lockout (axes) and the Content-Security-Policy (a JSON answer is not a
document; the policy middleware skips the API anyway). Building and tearing those down
costs about a tenth of a collect request's CPU. These paths therefore go through a second
Django handler whose chain is ``settings.MIDDLEWARE`` less ``BROWSER_ONLY_MIDDLEWARE``:
the security headers, CORS, the allowed-host check (CommonMiddleware) and the 503 for an
outage stay, and middleware added later joins both chains unless it is named here.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

# Exact paths (PATH_INFO) answered by the short chain: collection (browser and server),
# consent, and the widgets' recommendations.
HOT_API_PATHS = frozenset({"/api/v1/collect", "/api/v1/events", "/api/v1/consent",
                           "/api/v1/recommendations"})

BROWSER_ONLY_MIDDLEWARE = frozenset({
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",
    "recsite.security.ContentSecurityPolicyMiddleware",
})


def hot_api_middleware() -> list[str]:
    """The hot API paths' chain: MIDDLEWARE, in its order, less the browser-only classes."""
    return [path for path in settings.MIDDLEWARE if path not in BROWSER_ONLY_MIDDLEWARE]


class ChainHandler(WSGIHandler):
    """A Django WSGI handler whose middleware chain is ``middleware``, not MIDDLEWARE."""

    def __init__(self, middleware: list[str]) -> None:
        self.middleware = middleware
        super().__init__()  # loads the chain

    def load_middleware(self, is_async: bool = False) -> None:
        # Django builds the chain from settings.MIDDLEWARE: point it at ours while it does
        # (once, as the process starts, before any request).
        everything = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = everything


StartResponse = Callable[..., Any]


class RecsiteWSGIApplication:
    """The hot API paths through the short chain, every other path through the whole one."""

    def __init__(self) -> None:
        self.full = WSGIHandler()
        self.hot_api = ChainHandler(hot_api_middleware())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handler = self.hot_api if environ.get("PATH_INFO") in HOT_API_PATHS else self.full
        return handler(environ, start_response)
