"""The tracker on a page of another origin, throttled by the real server: it waits the
Retry-After the server gives (read through CORS) before it sends again, and every event
arrives once."""

import time

import pytest

from tests.browser.conftest import shop_url, stored_events
from tests.conftest import wait_for
from tracking.services import site_create
from tracking.throttling import FixedWindowThrottle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.browser.urls")]
WAIT = 3  # seconds left in the throttle's window when the page starts sending


def window_ends_in(monkeypatch, seconds: float) -> None:
    """Shift the throttles' clock so that the current minute ends in ``seconds``."""
    shift = 60 - time.time() % 60 - seconds
    monkeypatch.setattr(FixedWindowThrottle, "timer", staticmethod(lambda: time.time() + shift))


def test_the_tracker_waits_as_told_by_retry_after(page, live_server, settings, monkeypatch):
    # The page at localhost, the API at 127.0.0.1: another origin, as on a customer's site.
    api_origin = live_server.url.replace("localhost", "127.0.0.1")
    settings.RECSITE = {**settings.RECSITE, "THROTTLE_KEY_RATE": "1/m",  # one a minute
                        "THROTTLE_IP_RATE": "off", "ENDPOINT": f"{api_origin}/api/v1"}
    site = site_create(name="Shop", origins=[live_server.url]).site
    answers: list[tuple[float, int, str | None]] = []  # (sent at, in s, status, Retry-After)

    def finished(request) -> None:
        if request.url.endswith("/api/v1/collect"):
            response = request.response()
            answers.append((request.timing["startTime"] / 1000, response.status,
                            response.headers.get("retry-after")))

    page.on("requestfinished", finished)
    page.goto(shop_url(live_server, site, flush="100"))
    window_ends_in(monkeypatch, WAIT)
    page.get_by_role("button", name="Accept all").click()  # the receipt: the window's one
    assert wait_for(lambda: [e.name for e in stored_events(site)][:2] ==
                    ["page_view", "view_item"], timeout=WAIT + 10), answers
    for _ in range(50):  # Playwright hands its events over only while the test waits on it
        if any(status == 202 for _, status, _ in answers[1:]):
            break
        page.wait_for_timeout(100)

    throttled_at, status, retry_after = answers[0]
    assert status == 429 and retry_after is not None and 1 <= int(retry_after) <= WAIT
    retried_at = next(at for at, status, _ in answers[1:] if status == 202)
    assert retried_at - throttled_at >= int(retry_after) - 0.1, answers
    assert len({e.event_id for e in stored_events(site)}) == len(stored_events(site))
