"""The security browser tests' pages: every recommendation widget of a site, template and
JS, under a strict Content-Security-Policy (scripts from this server only: no nonce, no
inline script, no eval; styles from this server only)."""

from csp.constants import NONE, SELF
from csp.decorators import csp_replace
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

from recsite.urls import urlpatterns as project_urlpatterns

STRICT = {"default-src": [SELF], "script-src": [SELF], "style-src": [SELF],
          "img-src": [SELF], "connect-src": [SELF], "object-src": [NONE],
          "base-uri": [NONE], "form-action": [SELF], "frame-ancestors": [NONE]}

WIDGETS = """{% load recsite %}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Widgets</title>
{% recsite_tracker key=site stub=False %}
</head>
<body><main>
{% for placement in placements %}
  <div class="server-widget">{% recommendations placement=placement limit=100 key=site %}</div>
  <div class="browser-widget" data-recsite-widget data-placement="{{ placement }}"
       data-limit="100"></div>
{% endfor %}
</main></body></html>
"""


@csp_replace(STRICT)
def widgets(request: HttpRequest) -> HttpResponse:
    """Query: site (public key), placement (repeated)."""
    page = engines["django"].from_string(WIDGETS)
    context = {"site": request.GET.get("site", ""),
               "placements": request.GET.getlist("placement")}
    return HttpResponse(page.render(context, request))


urlpatterns = [path("test/widgets/", widgets), *project_urlpatterns]
