"""Browser fixtures: one headless Debian Chromium per module, a fresh context per test.

Chromium comes from Debian (/usr/bin/chromium; the test command installs it) and is
driven by Playwright's bundled driver; Playwright never downloads a browser here.
"""

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tracking.models import Event, Site
from tracking.services import site_create

# HeadlessChrome is on the crawler list the server drops as bots; a visitor's browser is
# not. Set for the whole browser: a per-context override misses beacons sent on unload.
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-agent={USER_AGENT}"]


def chromium_path() -> str:
    path = os.environ.get("RECSITE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("Chromium is missing: run the tests with scripts/test (it installs Debian's "
                    "chromium), or apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module, and Django's async-safety check off meanwhile.

    Playwright's sync API keeps an event loop in this thread while it runs; the ORM calls
    the tests make between browser steps are still plain synchronous calls. Module scope
    ends both before other test modules run.
    """
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=chromium_path(),
                                                  args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(browser: Browser, transactional_db) -> Iterator[BrowserContext]:
    # Depends on the database so that it closes first: the tracker's last beacon then
    # reaches a server whose site still exists.
    ctx = browser.new_context(user_agent=USER_AGENT, viewport={"width": 1280, "height": 800},
                              locale="en-GB", timezone_id="Europe/London")
    yield ctx
    # Silence the trackers first: a beacon sent on close would reach the server while the
    # test database is being emptied.
    for page in ctx.pages:
        with contextlib.suppress(PlaywrightError):
            page.evaluate("window.recsite && recsite('consent', {analytics: false, stored: true})")
    if ctx.pages:
        ctx.pages[0].wait_for_timeout(200)  # requests already under way finish
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def shop_site(live_server) -> Site:
    return site_create(name="Shop", origins=[live_server.url]).site


def shop_url(live_server, site: Site, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"site": site.public_key,
                                                          **params}.items())
    return f"{live_server.url}/test/shop/?{query}"


def stored_events(site: Site) -> list[Event]:
    """The site's stored events, one per event (the first row of each), oldest first."""
    return list(Event.objects.filter(site=site, item_index=0).order_by("ts", "id"))


def tracker_storage(page: Page) -> dict[str, list[str]]:
    """The names of the cookies and localStorage keys the page's origin holds."""
    return {
        "cookies": sorted(cookie["name"] for cookie in page.context.cookies()),
        "storage": sorted(page.evaluate("Object.keys(localStorage)")),
    }


@dataclass
class Sent:
    """A request the page completed to the API: path, Playwright's resource type, JSON body."""

    path: str
    resource_type: str
    body: dict


@dataclass
class Network:
    """The API requests a page completed (answered by the server), in order."""

    sent: list[Sent] = field(default_factory=list)

    def listen(self, page: Page) -> "Network":
        page.on("requestfinished", self._finished)
        return self

    def _finished(self, request) -> None:
        if "/api/v1/" in request.url and request.method == "POST":
            path = request.url.split("/api/v1/", 1)[1]
            self.sent.append(Sent(path, request.resource_type, json.loads(request.post_data)))

    def events(self, name: str | None = None) -> list[tuple[dict, Sent]]:
        return [(event, sent) for sent in self.sent if sent.path == "collect"
                for event in sent.body["events"] if name is None or event["name"] == name]


@pytest.fixture
def network(page: Page) -> Network:
    return Network().listen(page)
