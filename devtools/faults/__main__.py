"""python -m devtools.faults [--scenarios workers,redis,postgres,replay] [--events N] [--rate R]

Runs each scenario on its own PostgreSQL, Redis, gunicorn, Celery worker and
beat; prints per scenario what was sent, accepted, stored, dropped by reason,
counted as duplicates and lost, and the recovery times; exits 1 if any
invariant failed (2 if the system could not be set up). The test command runs it
after pytest.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from devtools import services
from devtools.faults import stack as stacks
from devtools.faults.reconcile import DROP_OUTCOMES, REJECT_OUTCOMES, Figures
from devtools.faults.scenarios import SCENARIOS, Options, note


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devtools.faults",
                                description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help=f"comma separated, from {', '.join(SCENARIOS)}")
    p.add_argument("--events", type=int, default=50_000,
                   help="events of the worker-kill load (the Redis load is half of it)")
    p.add_argument("--rate", type=float, default=1250, help="events per second offered")
    p.add_argument("--seed", type=int, default=None, help="for the kill moments and the mix")
    p.add_argument("--no-browser", action="store_true",
                   help="leave the tracker in Chromium out of the PostgreSQL outage")
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario {sorted(unknown)[0]!r}; choose from {', '.join(SCENARIOS)}",
              file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    options = Options(events=args.events, rate=args.rate, seed=seed, keep_logs=args.keep_logs,
                      browser=not args.no_browser)
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"faults: scenarios {', '.join(names)}; seed {seed}; {args.rate:,.0f} events/s "
          f"offered; visibility timeout {stacks.VISIBILITY_TIMEOUT} s in these runs", flush=True)
    results: list[Figures] = []
    started = time.monotonic()
    try:
        with stacks.migrated_template() as template:
            for name in names:
                results.append(run_scenario(name, options, template))
    except (services.ServiceError, RuntimeError, OSError, subprocess.SubprocessError) as error:
        traceback.print_exc()
        print(f"error: the faults could not run: {error}", file=sys.stderr)
        return 2
    print_summary(results, time.monotonic() - started)
    return 0 if all(f.ok for f in results) else 1


def run_scenario(name: str, options: Options, template: Path) -> Figures:
    started = time.monotonic()
    print(f"\n-- {name}: {SCENARIOS[name].__doc__.splitlines()[0]}", flush=True)
    with stacks.running(template=template, keep_logs=options.keep_logs) as stack:
        figures = SCENARIOS[name](stack, options)
        note("checked; stopping the servers")
    figures.extra["scenario wall time s"] = round(time.monotonic() - started, 1)
    print_figures(figures)
    return figures


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def print_figures(f: Figures) -> None:
    dropped = ", ".join(f"{k} {v:,}" for k, v in f.dropped.items()) or "none"
    repeats = f" ({f.sent:,} distinct)" if f.deliveries_sent != f.sent else ""
    print(f"   sent {f.deliveries_sent:,} events{repeats} in {f.requests:,} requests; answers "
          f"{dict(f.statuses)}")
    print(f"   accepted {f.accepted_client:,} (the load's 202s) / {f.accepted:,} (server) | stored "
          f"{f.stored:,} | dropped: {dropped} | duplicates {f.duplicates:,} | lost {f.lost:,}")
    for key, value in f.extra.items():
        if isinstance(value, list):
            print(f"   {key}:")
            for line in value:
                print(f"     - {line}")
        else:
            print(f"   {key}: {_fmt(value)}")
    print("   " + ("OK: every invariant holds" if f.ok else "VIOLATIONS:"))
    for violation in f.violations:
        print(f"     ! {violation}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def print_summary(results: list[Figures], seconds: float) -> None:
    print(f"\n{'scenario':<32}{'sent':>8}{'rejected':>9}{'accepted':>10}{'= stored':>10}"
          f"{'+ dropped':>10}{'+ dups':>8}{'lost':>6}  result")
    for f in results:
        dropped = sum(f.dropped.get(k, 0) for k in DROP_OUTCOMES)
        rejected = sum(f.dropped.get(k, 0) for k in REJECT_OUTCOMES)
        print(f"{f.name:<32}{f.deliveries_sent:>8,}{rejected:>9,}{f.accepted:>10,}{f.stored:>10,}"
              f"{dropped:>10,}{f.duplicates:>8,}{f.lost:>6,}  {'ok' if f.ok else 'FAILED'}")
    print(f"(accepted and its parts are the server's books, DailyCount; rejected events were "
          f"refused in the 202 answer; wall time {seconds:.0f} s)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
