"""Instructions per collect request, counted by callgrind: a figure the machine's load cannot move.

    .venv/bin/python bench/collect_instructions.py [--small 40] [--large 140]

Throughput figures on a shared 2-core machine move with whatever else runs;
instruction counts do not (valgrind counts the same total whatever the other
core does). Each case runs the whole Django stack in one process, through
``recsite.wsgi``'s application as gunicorn calls it (the hot API paths' shorter
middleware chain included; no HTTP server, no load tool), on PostgreSQL and Redis
started for the purpose, twice under ``valgrind --tool=callgrind``: once with
``--small`` requests and once with ``--large``. Everything else (start-up,
migrations, the site, the consent receipts) is the same in both runs, so the
difference divided by the extra requests is the cost of one request.

Cases, each a batch of 20 wire events from one visitor (bench/profile_ingest.py's
bodies):

hello        GET of a view that does nothing: Django and the whole middleware chain alone.
collect      POST /api/v1/collect as deployed: consent required and checked,
             both throttles counting.
collect-bare the same without the consent check and the throttles.

Takes about 10 minutes (valgrind runs Python some 50x slower). Writes the counts to
bench/results/instructions.json (or ``--json``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CASES = ("hello", "collect", "collect-bare")
RESULTS = ROOT / "bench" / "results" / "instructions.json"
BODIES_SEED = 7


def serve_requests(case: str, count: int, max_count: int) -> None:
    """In this process: set up, then send ``count`` requests of ``case`` (under callgrind)."""
    from bench.profile_ingest import ORIGIN, wire_body
    from devtools import services

    real = case == "collect"
    with services.running(durable=True) as service_env:
        os.environ.update(service_env)
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "bench.settings", "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "127.0.0.1",
            "RECSITE_THROTTLE_KEY_RATE": "1000000/s" if real else "off",
            "RECSITE_THROTTLE_IP_RATE": "1000000/s" if real else "off",
        })
        import django

        django.setup()
        import orjson
        from django.core.management import call_command

        from recsite.handlers import RecsiteWSGIApplication
        from tracking.services import consent_record, site_create

        call_command("migrate", verbosity=0)
        site = site_create(name="Bench", origins=[ORIGIN], require_consent=real).site
        rng = random.Random(BODIES_SEED)
        # The same bodies and the same receipts in both runs, whatever ``count`` is.
        bodies = [wire_body(site.public_key, subjects=5000, rng=rng) for _ in range(max_count)]
        if real:
            for anon_id in sorted({orjson.loads(b)["events"][0]["anon_id"] for b in bodies}):
                consent_record(site=site, payload={"anon_id": anon_id,
                                                   "purposes": {"analytics": True}})
        app = RecsiteWSGIApplication()

        def request(method: str, path: str, body: bytes = b"") -> str:
            environ = {
                "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "",
                "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
                "HTTP_HOST": "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
                "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr, "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(body)), "HTTP_ORIGIN": ORIGIN,
                "HTTP_USER_AGENT": "bench", "REMOTE_ADDR": "127.0.0.1",
            }
            status: list[str] = []
            response = app(environ, lambda s, headers: status.append(s))
            b"".join(response)
            response.close()
            return status[0]

        for body in bodies[:count]:
            answer = (request("GET", "/bench/hello") if case == "hello"
                      else request("POST", "/api/v1/collect", body))
            if not answer.startswith("20"):
                raise SystemExit(f"{case}: answered {answer}")
        from django.db import connections

        connections.close_all()


def instructions(case: str, count: int, max_count: int, workdir: Path) -> int:
    """Total instructions of one run of ``count`` requests under callgrind."""
    out = workdir / f"callgrind.{case}.{count}"
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--serve", case, str(count), str(max_count)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        serve_requests(argv[1], int(argv[2]), int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=40, help="requests in the first run")
    parser.add_argument("--large", type=int, default=140, help="requests in the second run")
    parser.add_argument("--cases", default=",".join(CASES), help="comma separated")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind not found: sudo apt-get install -y valgrind")
    extra = args.large - args.small
    print(f"instructions per request: (run of {args.large} - run of {args.small}) / {extra}")
    cases = {}
    with tempfile.TemporaryDirectory(prefix="recsite-callgrind-") as tmp:
        for case in args.cases.split(","):
            small = instructions(case, args.small, args.large, Path(tmp))
            large = instructions(case, args.large, args.large, Path(tmp))
            cases[case] = {"small_run": small, "large_run": large,
                           "per_request": (large - small) / extra}
            print(f"{case:<14}{(large - small) / extra / 1e6:8.2f} M instructions per request",
                  flush=True)
    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"small": args.small, "large": args.large, "cases": cases,
                                     "valgrind": version.strip()}, indent=2) + "\n")
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
