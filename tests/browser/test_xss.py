"""XSS: 736 payloads (tests/data/xss_payloads.json) as item ids, titles, descriptions,
URLs and image URLs, widget headings and consent-banner texts, rendered by the template
widget and the JS widget in Chromium on a page with a strict CSP.

Passing means: no dialog opened, no CSP violation and no page error, no element or
attribute in the widgets that the widgets do not make themselves (no injected tag, no
on* handler), every link and image an http(s) URL or "#", and every text shown exactly
as it was stored.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest

from recommend import catalog, recommending, serving
from recommend.models import Placement
from tests.conftest import wait_for
from tracking.models import Event, Item
from tracking.services import site_create

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.urls("tests.browser.security_pages")]

PAYLOADS = json.loads((Path(__file__).resolve().parents[1] / "data" /
                       "xss_payloads.json").read_text())
PER_SITE = 184  # the popular list a widget draws from holds 200 items
PER_WIDGET = 92
MADE_BY_WIDGETS = {"SECTION", "H2", "UL", "LI", "A", "SPAN", "BUTTON", "IMG", "DIV"}
WIDGET_ATTRIBUTES = {"class", "aria-labelledby", "data-recsite-placement", "data-rec-token",
                     "data-recsite-variant", "id", "href", "data-recsite-item", "type",
                     "data-recsite-dismiss", "aria-label", "title", "data-recsite-widget",
                     "data-placement", "data-limit", "data-recsite-filled", "src", "alt",
                     "loading", "width", "height"}

# Runs before any page script: records CSP violations for the test to read.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber]);
});
"""

FILLED = "document.querySelectorAll('.browser-widget section').length"

# What the widgets hold, read in the page.
INSPECT = """() => {
  const sections = [...document.querySelectorAll('.server-widget, .browser-widget')]
    .flatMap((w) => [...w.querySelectorAll('section')]);
  const elements = sections.flatMap((s) => [s, ...s.querySelectorAll('*')]);
  const side = (cls) => [...document.querySelectorAll(cls + ' section')].map((w) => ({
    heading: w.querySelector('h2').textContent,
    names: [...w.querySelectorAll('.recsite-widget__name')].map((n) => n.textContent),
    items: [...w.querySelectorAll('a[data-recsite-item]')].map((n) => n.dataset.recsiteItem),
  }));
  return {
    tags: [...new Set(elements.map((el) => el.tagName))],
    attributes: [...new Set(elements.flatMap((el) => [...el.attributes].map((a) => a.name)))],
    links: [...new Set(elements.filter((el) => el.hasAttribute('href') || el.hasAttribute('src'))
      .map((el) => [el.getAttribute('href') ?? el.getAttribute('src'),
                    new URL(el.href || el.src).protocol]))],
    server: side('.server-widget'),
    browser: side('.browser-widget'),
  };
}"""


def _item_id(n: int, payload: str) -> str:
    return f"{n:04d}:{payload}"[:100]


def _shop(live_server, payloads: list[str], offset: int
          ) -> tuple[str, list[str], list[str]]:
    """A site whose items carry these payloads, two placements titled with payloads."""
    site = site_create(name=f"Shop {offset}", origins=[live_server.url]).site
    now = datetime.now(UTC)
    items, events = [], []
    for k, payload in enumerate(payloads):
        n = offset + k
        items.append(Item(site=site, external_id=_item_id(n, payload), title=payload,
                          description=payload, category=f"c{k % 2}", price=1.0,
                          currency="EUR", url=payload, image_url=payload))
        events.append(Event(site=site, event_id=uuid.uuid4(), subject=f"s{n}", session="s",
                            name="view_item", item_id=_item_id(n, payload),
                            ts=now - timedelta(minutes=k % 50), source="import"))
    Item.objects.bulk_create(items)
    Event.objects.bulk_create(events)
    names, titles = [], []
    for k in range(2):
        titles.append(payloads[k * 7][:200])
        Placement.objects.create(site=site, name=f"xss{k}", title=titles[-1], limit=100,
                                 include_categories=[f"c{k}"])
        names.append(f"xss{k}")
    return site.public_key, names, titles


@pytest.fixture
def strict(settings):
    settings.RECSITE = {**settings.RECSITE, "MAX_LIMIT": 100, "CONSENT_TEXTS": {
        "title": "</script><script>alert('banner')</script>\u2028",
        "text": "<img src=x onerror=alert('banner')>\u2029 & \"quotes\"",
        "accept": "Accept all"}}
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()
    yield
    recommending.memos_clear()
    catalog.catalogs_clear()


def test_payloads_render_as_text_with_no_script_running(page, live_server, strict):
    assert len(PAYLOADS) >= 500
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.add_init_script(WATCH)

    shown_titles, shown_ids = [], []
    for offset in range(0, len(PAYLOADS), PER_SITE):
        payloads = PAYLOADS[offset:offset + PER_SITE]
        key, placements, headings = _shop(live_server, payloads, offset)
        query = urlencode([("site", key)] + [("placement", p) for p in placements])
        page.goto(f"{live_server.url}/test/widgets/?{query}")
        # Polled from outside: the page's CSP forbids the eval Playwright's waits use.
        expected = len(placements)
        assert wait_for(lambda n=expected: page.evaluate(FILLED) == n, timeout=20)
        page.wait_for_timeout(300)  # the tracker and the banner settle
        seen = page.evaluate(INSPECT)

        assert set(seen["tags"]) <= MADE_BY_WIDGETS, seen["tags"]
        assert set(seen["attributes"]) <= WIDGET_ATTRIBUTES, seen["attributes"]
        for raw, protocol in seen["links"]:  # only "#": no payload is an http(s) URL
            assert raw == "#" and protocol in ("http:", "https:"), (raw, protocol)
        for side in ("server", "browser"):
            widgets = seen[side]
            assert [w["heading"] for w in widgets] == headings
            names = [name for w in widgets for name in w["names"]]
            assert sorted(names) == sorted(payloads), side
            ids = [i for w in widgets for i in w["items"] if i]
            assert sorted(set(ids)) == sorted(_item_id(offset + k, p)
                                              for k, p in enumerate(payloads)), side
        shown_titles += names
        shown_ids += ids
        banner = page.get_by_role("dialog").text_content()
        assert "</script><script>alert('banner')</script>\u2028" in banner
        assert "<img src=x onerror=alert('banner')>\u2029 & \"quotes\"" in banner
        assert page.evaluate("window.__violations") == []

    assert dialogs == [] and errors == []
    assert sorted(set(shown_titles)) == sorted(set(PAYLOADS))
