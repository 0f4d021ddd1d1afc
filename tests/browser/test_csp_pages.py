"""The shipped Content-Security-Policy on real pages: the demo shop (tracker, banner, both
widgets), the landing page, the admin (login, dashboard, lists) and the API docs load in
Chromium with no CSP violation and no script error, and every document carries the policy
and the security headers."""

import pytest
from django.contrib.auth import get_user_model

from demo.shop import SITE_NAME, shop_prepare
from recommend import catalog, recommending, serving
from tests.recommend.conftest import shop_catalog
from tests.recommend.test_training import GROUPS, behaviour
from tracking.services import site_create

pytestmark = pytest.mark.django_db(transaction=True)

WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__violations.push([e.violatedDirective, e.blockedURI, e.sourceFile, e.lineNumber]);
});
"""


@pytest.fixture
def demo(live_server, settings, tmp_path):
    settings.RECSITE = {**settings.RECSITE, "MODEL_DIR": str(tmp_path / "models")}
    serving.loaded_models_clear()
    catalog.catalogs_clear()
    recommending.memos_clear()
    site = site_create(name=SITE_NAME, origins=[live_server.url]).site
    shop_catalog(site)
    behaviour(site)
    assert shop_prepare(site=site) is not None
    yield site
    serving.loaded_models_clear()
    catalog.catalogs_clear()


def visit(page, url: str, problems: list[str], wait_for: str | None = None) -> dict:
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    if wait_for:
        page.wait_for_selector(wait_for, timeout=15_000)
    page.wait_for_timeout(300)
    problems += [f"{url}: {v}" for v in page.evaluate("window.__violations")]
    return response.headers


def test_demo_admin_and_docs_run_under_the_policy(page, live_server, demo):
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"error: {error}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico") else None)
    page.add_init_script(WATCH)
    base = live_server.url
    item = GROUPS[0][0]

    headers = visit(page, f"{base}/shop/", problems)
    page.get_by_role("button", name="Accept all").click()
    visit(page, f"{base}/shop/p/{item}/", problems, "section[data-recsite-placement]")
    page.click("#add-to-cart")
    page.locator("#added", has_text="Added").wait_for()
    visit(page, f"{base}/shop/cart/", problems, "[data-recsite-widget] section")
    visit(page, f"{base}/", problems)

    get_user_model().objects.create_superuser("admin", "admin@example.com", "a long pass 42")
    visit(page, f"{base}/admin/login/", problems)
    page.fill("#id_username", "admin")
    page.fill("#id_password", "a long pass 42")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    admin_headers = visit(page, f"{base}/admin/", problems)
    visit(page, f"{base}/admin/recommend/dashboard/?site={demo.pk}", problems)
    visit(page, f"{base}/admin/tracking/site/", problems)
    visit(page, f"{base}/api/docs/", problems, ".swagger-ui .info")

    assert problems == []
    for document in (headers, admin_headers):
        policy = document["content-security-policy"]
        script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
        assert "'self'" in script_src and "unsafe" not in script_src, policy
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        assert document["x-frame-options"] == "DENY"
        assert document["x-content-type-options"] == "nosniff"
        assert document["referrer-policy"] == "same-origin"
        assert document["cross-origin-opener-policy"] == "same-origin"
    assert "style-src 'self';" in headers["content-security-policy"] + ";"
