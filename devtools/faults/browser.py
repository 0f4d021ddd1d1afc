"""The real tracker in headless Chromium (Debian's), on a page of another origin.

A small page server plays the site owner's shop: its page loads the built
``tracker.min.js`` with the gunicorn of the scenario as its endpoint, so the
tracker posts cross-origin exactly as on a real site. What the tracker sent is
read from the requests the page made; what it still holds, from localStorage.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from devtools import services
from devtools.faults.stack import ROOT, Stack
from devtools.faults.traffic import BROWSER_UA

TRACKER = ROOT / "static" / "tracker" / "dist" / "tracker.min.js"
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Desk lamp</title>
<script defer src="/tracker.min.js" data-site="{key}" data-endpoint="{endpoint}"
        data-flush-ms="200"></script></head>
<body><h1>Desk lamp</h1><p>A shop page of another origin than recsite's.</p></body></html>"""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-agent={BROWSER_UA}"]


@contextlib.contextmanager
def page_server(stack: Stack) -> Iterator[str]:
    """Serve the shop page and the tracker on a free loopback port; yields the origin."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/tracker.min.js":
                body, kind = TRACKER.read_bytes(), "text/javascript"
            else:
                body = PAGE.format(key=stack.public_key, endpoint=f"{stack.base}/api/v1").encode()
                kind = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Tab:
    """One shop page with the tracker, its visitor consented; records the tracker's requests."""

    def __init__(self, stack: Stack, playwright: Any, browser: Any, page: Any, origin: str
                 ) -> None:
        self.stack, self.playwright, self.browser, self.page = stack, playwright, browser, page
        self.origin = origin
        self.sent: set[str] = set()
        self.answers: Counter = Counter()
        page.on("request", self._request)
        page.on("response", self._response)

    @classmethod
    def open(cls, stack: Stack, origin: str, timeout: float = 30.0) -> Tab:
        """The page loaded, consent granted, and a first batch answered 202."""
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        chromium = os.environ.get("RECSITE_CHROMIUM") or services.chromium_bin()
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(user_agent=BROWSER_UA).new_page()
        tab = cls(stack, playwright, browser, page, origin)
        page.goto(origin + "/")
        tab.grant()
        if not tab._wait(lambda: tab.answers[202] > 0, timeout):
            tab.close()
            raise RuntimeError(f"the tracker delivered nothing in {timeout:.0f} s: {tab.answers}")
        return tab

    def _request(self, request: Any) -> None:
        if request.url.endswith("/api/v1/collect") and request.post_data:
            body = json.loads(request.post_data)
            self.sent.update(event["event_id"] for event in body["events"])

    def _response(self, response: Any) -> None:
        if response.url.endswith("/api/v1/collect"):
            self.answers[response.status] += 1

    def _wait(self, done: Any, timeout: float, step_ms: int = 250) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            self.page.wait_for_timeout(step_ms)  # lets Playwright deliver the page's events
        return bool(done())

    def queued(self) -> list[str]:
        """Ids of the events the tracker still holds (consent receipts left out)."""
        state = json.loads(self.page.evaluate("localStorage.getItem('rs_q')") or "{}")
        return [entry["event_id"] for entry in state.get("q", []) if "r" not in entry]

    def events_during(self, seconds: float) -> list[str]:
        """A visitor adding an item to the cart every second, and going to a second page
        halfway (the first page is left with its events undelivered); returns the ids
        queued at the end."""
        started = time.monotonic()
        number, navigated = 0, False
        while time.monotonic() - started < seconds - 2.0:
            if not navigated and time.monotonic() - started > seconds / 2:
                self.page.goto(f"{self.origin}/?page=2")
                self.grant(stored=True)
                navigated = True
            self.page.evaluate(
                "n => recsite('event', 'add_to_cart', {currency: 'EUR', value: 10, "
                "items: [{item_id: 'sku-' + n, price: 10, quantity: 1}]})", number)
            number += 1
            self.page.wait_for_timeout(1000)
        return self.queued()

    def grant(self, *, stored: bool = False) -> None:
        """What a consent banner does: the visitor's choice (remembered, on later pages)."""
        self.page.wait_for_function("typeof window.recsite === 'function'")
        self.page.evaluate("stored => recsite('consent', {analytics: true, personalization: "
                           "false, version: 'faults', source: 'api', stored})", stored)

    def delivered(self, *, timeout: float) -> dict[str, Any]:
        """Wait until the tracker holds nothing more; what it took and what it was answered."""
        started = time.monotonic()
        empty = self._wait(lambda: not self.queued(), timeout, step_ms=500)
        return {"queue empty": empty,
                "queue emptied after the restart s": round(time.monotonic() - started, 1),
                "tracker requests answered": dict(self.answers), "events sent": len(self.sent)}

    def sent_ids(self) -> set[str]:
        return set(self.sent)

    def close(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        with contextlib.suppress(PlaywrightError):  # silence the tracker: no beacon on close
            self.page.evaluate("recsite('consent', {analytics: false, stored: true})")
        with contextlib.suppress(PlaywrightError):
            self.browser.close()
        self.playwright.stop()

