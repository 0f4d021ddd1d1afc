"""The whole test suite: lint, import contracts, then pytest on real PostgreSQL and Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

from devtools import services

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def step(title: str, command: list[str], env: dict[str, str] | None = None,
         cwd: Path = ROOT) -> None:
    print(f"\n== {title}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=cwd, env=env)
    if result.returncode != 0:
        print(f"== {title} failed (exit {result.returncode})", flush=True)
        sys.exit(result.returncode)
    print(f"== {title} passed in {time.monotonic() - started:.1f} s", flush=True)


def browser_tools() -> dict[str, str]:
    """Chromium for the browser tests, and the tracker's build tools when not yet installed."""
    tracker = ROOT / "static" / "tracker"
    installed = tracker / "node_modules" / ".package-lock.json"
    lock = tracker / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        step("tracker build tools", [services.npm_bin(), "ci", "--no-audit", "--no-fund"],
             cwd=tracker)
    return {"RECSITE_CHROMIUM": services.chromium_bin()}


def faults_step(browser_env: dict[str, str]) -> None:
    """kill -9 the worker, restart Redis, stop PostgreSQL, replay events: nothing lost
    (python -m devtools.faults; a few minutes)."""
    env = {**os.environ, **browser_env, "PYTHONUNBUFFERED": "1"}
    step("faults", [sys.executable, "-m", "devtools.faults"], env=env)


def main(argv: list[str]) -> None:
    if "--no-lint" in argv:  # for quick iterations; CI always lints
        argv = [arg for arg in argv if arg != "--no-lint"]
    else:
        step("lint", [str(BIN / "ruff"), "check", "."])
        step("import contracts", [str(BIN / "lint-imports"), "--no-cache"])
    try:
        browser_env = browser_tools()
        with services.running() as service_env:
            print(f"\n== services: {service_env['DATABASE_URL']} {service_env['REDIS_URL']}")
            env = {**os.environ, **service_env, **browser_env, "PYTHONUNBUFFERED": "1"}
            step("tests", [str(BIN / "pytest"), *argv], env=env)
        if not argv:  # the whole suite (CI): then the fault runs, on servers of their own
            faults_step(browser_env)
    except services.ServiceError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
