"""What the tracker and the consent banner add to a page load, in headless Chromium.

    .venv/bin/python bench/tracker_pageload.py [--runs 15]

Serves one product page from a stub HTTP server on loopback (no Django view, no
database: the API answers 202/201 at once, so only the browser's side is measured),
with and without the real {% recsite_tracker %} tag's markup, in two situations, each
against its own baseline (the same page without recsite):

first visit  cold cache, a new browser context: the banner opens, nothing is collected
returning    a visitor who accepted earlier, the files cached (Cache-Control: max-age)
             from a load just before: page_view and a dataLayer view_item are sent

The variants are interleaved run by run so background load hits them alike. Per
variant it prints medians of the load event (ms from navigation start), the main
thread's script time and task time (Chrome's Performance.getMetrics ScriptDuration /
TaskDuration, at the load event plus 50 ms), and each one's difference from its
baseline. Debian's Chromium is used (installed with apt-get when missing, as root).
Writes the medians to bench/results/pageload.json (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DIST = ROOT / "static" / "tracker" / "dist"
RESULTS = ROOT / "bench" / "results" / "pageload.json"
PUBLIC_KEY = "pk_live_bench"
# name -> (page, warm cache, consent cookie, the baseline it is compared with)
VARIANTS = {
    "baseline, cold": ("baseline", False, False, "baseline, cold"),
    "first visit": ("recsite", False, False, "baseline, cold"),
    "baseline, warm": ("baseline", True, False, "baseline, warm"),
    "returning": ("recsite", True, True, "baseline, warm"),
}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Desk lamp</title>
<script>window.dataLayer = window.dataLayer || [];
dataLayer.push({event: "view_item", ecommerce: {currency: "EUR", value: 19.9,
  items: [{item_id: "sku-1", item_name: "Desk lamp", price: 19.9}]}});</script>
%(recsite)s</head><body><h1>Desk lamp</h1><p>%(text)s</p>
<section data-recsite-placement="product" data-rec-token="tok">
<a href="/p/7" data-recsite-item="sku-7">Shade</a><a href="/p/8" data-recsite-item="sku-8">Bulb</a>
</section></body></html>"""


def recsite_markup() -> str:
    """The real template tag's output (Django set up on a throwaway, migrated SQLite data
    directory: the tag records the banner version it shows)."""
    os.environ.setdefault("RECSITE_DATA_DIR", tempfile.mkdtemp(prefix="recsite-bench-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.template import engines

    call_command("migrate", verbosity=0)

    tag = engines["django"].from_string("{% load recsite %}{% recsite_tracker key=key %}")
    return tag.render({"key": PUBLIC_KEY})


class Handler(BaseHTTPRequestHandler):
    """Pages from PAGES_DIR, the built files from dist/, and 202/201 for the API."""

    pages_dir = Path()

    def log_message(self, *args) -> None:  # quiet
        pass

    def answer(self, status: int, body: bytes, content_type: str, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if cache:
            self.send_header("Cache-Control", "public, max-age=3600")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        name = path.rsplit("/", 1)[-1]
        if path.startswith("/page/") and (self.pages_dir / f"{name}.html").is_file():
            page = (self.pages_dir / f"{name}.html").read_bytes()
            return self.answer(200, page, "text/html; charset=utf-8")
        if path.startswith("/static/tracker/dist/") and (DIST / name).is_file():
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            return self.answer(200, (DIST / name).read_bytes(), kind, cache=True)
        self.answer(404, b"", "text/plain")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        created = self.path.endswith("/consent")
        body = b'{"receipt_id": "x"}' if created else b'{"accepted": 1, "rejected": []}'
        self.answer(201 if created else 202, body, "application/json")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a browser context closed while its beacon was being answered


def serve(pages_dir: str) -> None:
    """The stub server, in its own process (the browser driver's process stays out of its way)."""
    Handler.pages_dir = Path(pages_dir)
    server = QuietServer(("127.0.0.1", 0), Handler)
    print(server.server_port, flush=True)
    server.serve_forever()


def measure(browser, url: str, variant: str) -> dict[str, float]:
    page_name, warm, accepted, _ = VARIANTS[variant]
    context = browser.new_context()
    if accepted:
        choice = {"v": "2026-11-24", "a": 1, "p": 1, "s": "banner", "t": "2026-11-20T10:00:00Z"}
        context.add_cookies([{"name": "rs_consent", "url": url,
                              "value": urllib.parse.quote(json.dumps(choice))}])
    if warm:  # an earlier page view of the visit fills the cache
        earlier = context.new_page()
        earlier.goto(f"{url}/page/{page_name}", wait_until="load")
        earlier.wait_for_timeout(100)
        earlier.close()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(f"{url}/page/{page_name}", wait_until="load")
    page.wait_for_timeout(50)
    load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    return {"load_ms": load_ms, "script_ms": metrics["ScriptDuration"] * 1000,
            "task_ms": metrics["TaskDuration"] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # the stub server's process
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    from playwright.sync_api import sync_playwright

    from devtools.services import chromium_bin, stop

    pages_dir = Path(tempfile.mkdtemp(prefix="recsite-pageload-"))
    text = "A lamp for the desk. " * 200
    (pages_dir / "baseline.html").write_text(PAGE % {"recsite": "", "text": text})
    (pages_dir / "recsite.html").write_text(PAGE % {"recsite": recsite_markup(), "text": text})
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(pages_dir)],
                              stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{server.stdout.readline().strip()}"
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_bin(),
                                                 args=CHROMIUM_ARGS)
            for variant in VARIANTS:  # warm-up: the browser's own first-run costs
                measure(browser, url, variant)
            for _ in range(args.runs):
                for variant in VARIANTS:
                    results[variant].append(measure(browser, url, variant))
            version = browser.version
            browser.close()
    finally:
        stop(server)
        shutil.rmtree(pages_dir, ignore_errors=True)
    medians = report(results, version, args.runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "chromium": version, "runs": args.runs, "medians": medians,
        "baselines": {variant: spec[3] for variant, spec in VARIANTS.items()},
        "sizes": {name: (DIST / name).stat().st_size for name in sorted(os.listdir(DIST))},
        "loadavg": os.getloadavg()}, indent=2) + "\n")
    print(f"written: {args.json}")


def report(results: dict[str, list[dict[str, float]]], version: str,
           runs: int) -> dict[str, dict[str, float]]:
    sizes = {name: (DIST / name).stat().st_size for name in sorted(os.listdir(DIST))}
    print(f"Chromium {version}, {runs} runs per variant, medians; loopback stub server; "
          f"built files (bytes) {sizes}")
    print(f"{'variant':<15} {'load ms':>8} {'+ms':>6} {'script ms':>10} {'+ms':>6} "
          f"{'task ms':>8} {'+ms':>6}")
    medians = {variant: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
               for variant, rows in results.items()}
    for variant, row in medians.items():
        base = medians[VARIANTS[variant][3]]
        print(f"{variant:<15} {row['load_ms']:8.1f} {row['load_ms'] - base['load_ms']:+6.1f} "
              f"{row['script_ms']:10.1f} {row['script_ms'] - base['script_ms']:+6.1f} "
              f"{row['task_ms']:8.1f} {row['task_ms'] - base['task_ms']:+6.1f}")
    return medians


if __name__ == "__main__":
    main()
