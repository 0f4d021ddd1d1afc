"""Where a recommendations request's CPU goes, in-process: the full Django stack per path.

    .venv/bin/python bench/profile_recommendations.py [--calls 3000] [--cprofile PHASE]

Starts PostgreSQL and Redis and sets up what bench/recommendations.py serves (the Online
Retail sample, visitors with real customers' histories, a trained model, the "home"
placement with MMR), then, in this one process with no HTTP server, calls the WSGI
handler (all middleware) the way gunicorn does for GET /api/v1/recommendations:

ceiling   a bare Django view answering one Redis GET (bench/rec_urls.py)
cached    every visitor's answer in the cache
uncached  RECSITE_REC_CACHE_SECONDS 0: history, scoring, rules, MMR, reasons, token

and prints the mean CPU microseconds per request of each, and of the view alone (the
middleware's share is the difference). ``--cprofile cached`` (or uncached) prints the
functions that take the time. CPU time moves by 10 % and more when other work shares the
machine; ``--instructions`` counts instead, with callgrind, the instructions per request of
each path in a second process (instrumented only while it serves the measured requests,
after warm-up): a figure the machine's load cannot move, to compare a change with the
code before it. bench/recommendations.py measures the throughput these costs allow.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.recommendations import CEILING_KEY, DATA, ORIGIN, SETUP, rec_path  # noqa: E402
from devtools import services  # noqa: E402


def setup(subjects: int, model_dir: Path) -> str:
    """Migrate, create the site, import the sample, make visitors and train; the public key."""
    import json

    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    out = io.StringIO()
    call_command("create_site", "Bench", "--origin", ORIGIN, "--json", stdout=out)
    public_key = json.loads(out.getvalue())["public_key"]
    call_command("import_events", "--format", "online-retail", "--site", public_key,
                 str(DATA), stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    sys.stdout, saved = out, sys.stdout
    try:
        exec(SETUP.format(public_key=public_key, subjects=subjects), {})
    finally:
        sys.stdout = saved
    print(out.getvalue().strip().removeprefix("BENCHSETUP "), flush=True)
    return public_key


def wsgi_environ(path: str) -> dict[str, Any]:
    """What gunicorn hands Django for a GET from the widget (an allowed Origin)."""
    script, _, query = path.partition("?")
    return {"REQUEST_METHOD": "GET", "PATH_INFO": script, "QUERY_STRING": query,
            "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000", "HTTP_ORIGIN": ORIGIN,
            "HTTP_USER_AGENT": "wrk", "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0)}


def caller(handler: Any) -> Callable[[str], bytes]:
    def call(path: str) -> bytes:
        status = []
        body = b"".join(handler(wsgi_environ(path), lambda s, h: status.append(s)))
        if not status[0].startswith("200"):
            raise RuntimeError(f"{path}: {status[0]} {body[:300]!r}")
        return body
    return call


def cpu_us(fn: Callable[[str], Any], paths: list[str]) -> float:
    """Mean CPU microseconds of fn over the paths."""
    started = time.process_time()
    for path in paths:
        fn(path)
    return 1e6 * (time.process_time() - started) / len(paths)


def view_caller() -> Callable[[str], bytes]:
    """The recommendations view alone (no middleware, no URL resolving)."""
    from django.test import RequestFactory

    from recommend.api import RecommendationsApi

    factory, view = RequestFactory(), RecommendationsApi.as_view()

    def call(path: str) -> bytes:
        response = view(factory.get(path, HTTP_ORIGIN=ORIGIN))
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.content[:300]!r}")
        return response.content
    return call


PHASES = ("ceiling", "cached", "uncached")
VIEW_PHASES = ("cached-view", "uncached-view")  # the view alone: no middleware or handler


def phase_paths(phase: str, public_key: str, *, calls: int, subjects: int) -> list[str]:
    """The request paths of a phase: random visitors (a fixed seed), or the ceiling's URL."""
    if phase == "ceiling":
        return [f"/bench/redis-get?{i}" for i in range(calls)]
    rng = random.Random(7)
    template = rec_path(public_key)
    return [template % rng.randrange(subjects) for _ in range(calls)]


def cache_warm(stack: Callable[[str], bytes], public_key: str, subjects: int) -> None:
    """Every visitor's answer cached, and the ceiling's stored answer."""
    from django.conf import settings
    from django.core.cache import cache

    settings.RECSITE["REC_CACHE_SECONDS"] = 300
    template = rec_path(public_key)
    for i in range(subjects):
        stack(template % i)
    cache._cache.get_client(write=True).set(CEILING_KEY, stack(template % 0))


def measure(public_key: str, *, calls: int, subjects: int, repeat: int,
            cprofile: str | None, then: Path | None) -> None:
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    paths = phase_paths("cached", public_key, calls=calls, subjects=subjects)
    ceiling = phase_paths("ceiling", public_key, calls=calls, subjects=subjects)
    stack, view = caller(WSGIHandler()), view_caller()
    cache_warm(stack, public_key, subjects)

    rows: list[tuple[str, Callable[[str], Any], list[str], bool]] = [
        ("ceiling: bare view, one Redis GET", stack, ceiling, False),
        ("cached: full stack", stack, paths, False),
        ("cached: the view alone", view, paths, False),
        ("uncached: full stack", stack, paths, True),
        ("uncached: the view alone", view, paths, True),
    ]
    print(f"\nCPU microseconds per request, mean of {calls:,} calls, median of {repeat} "
          f"runs (in-process, {len(settings.MIDDLEWARE)} middleware classes)")
    results: dict[str, float] = {}
    for label, fn, inputs, no_cache in rows if repeat else ():
        settings.RECSITE["REC_CACHE_SECONDS"] = 0 if no_cache else 300
        fn(inputs[0])
        runs = sorted(cpu_us(fn, inputs) for _ in range(repeat))
        results[label] = runs[len(runs) // 2]
        print(f"  {label:<36}{results[label]:>8.0f}", flush=True)
    for path in ("cached", "uncached") if repeat else ():
        ceiling_us = results["ceiling: bare view, one Redis GET"]
        full, alone = results[f"{path}: full stack"], results[f"{path}: the view alone"]
        print(f"  {path}: {full / ceiling_us:.2f}x the ceiling; middleware and handler "
              f"{full - alone:.0f} us")
    if cprofile:
        settings.RECSITE["REC_CACHE_SECONDS"] = 0 if cprofile == "uncached" else 300
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for path in paths:
            stack(path)
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        print(text.getvalue())
    if then is not None:  # a file timing the parts of a path, or a change being tried
        exec(then.read_text(), {"public_key": public_key, "paths": paths, "stack": stack,
                                "view": view, "cpu_us": cpu_us, "wsgi_environ": wsgi_environ})


# --- instructions (callgrind) ---------------------------------------------------------

# Callgrind's client requests, for the child to count exactly its measured requests.
MARKS_C = r"""
#include <valgrind/callgrind.h>
void measure_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void measure_stop(const char *name) {
  CALLGRIND_DUMP_STATS_AT(name); CALLGRIND_STOP_INSTRUMENTATION;
}
"""


def child_serve(public_key: str, *, calls: int, subjects: int, marks: str,
                then: Path | None) -> None:
    """In the process under callgrind: for each phase, warm up (not counted), then serve
    ``calls`` requests with instrumentation on, dumped under the phase's name; then run
    ``then`` with ``counted(label, fn, inputs)`` to count the instructions of a part."""
    import ctypes

    import django

    django.setup()
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    lib = ctypes.CDLL(marks)
    stack, view = caller(WSGIHandler()), view_caller()
    for phase in (*PHASES, *VIEW_PHASES):
        path_kind, _, alone = phase.partition("-")
        call = view if alone else stack
        settings.RECSITE["REC_CACHE_SECONDS"] = 0 if path_kind == "uncached" else 300
        paths = phase_paths(path_kind, public_key, calls=calls, subjects=subjects)
        for path in paths[:20]:
            call(path)
        lib.measure_start()
        for path in paths:
            call(path)
        lib.measure_stop(phase.replace("-", "_").encode())
    if then is not None:
        def counted(label: str, fn: Callable[[Any], Any], inputs: list[Any]) -> None:
            for value in inputs[:5]:
                fn(value)
            lib.measure_start()
            for value in inputs:
                fn(value)
            lib.measure_stop(f"part_{len(inputs)}_{label}".encode())

        exec(then.read_text(), {"public_key": public_key, "stack": stack, "view": view,
                                "counted": counted, "wsgi_environ": wsgi_environ,
                                "paths": phase_paths("cached", public_key, calls=calls,
                                                     subjects=subjects)})


def instructions(public_key: str, *, calls: int, subjects: int, workdir: Path,
                 then: Path | None = None) -> None:
    """Instructions per request of each phase, counted by callgrind in a child process."""
    source, marks = workdir / "marks.c", workdir / "marks.so"
    source.write_text(MARKS_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(marks), str(source)],
                   check=True)
    out = workdir / "callgrind.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--child", public_key, "--marks", str(marks),
         "--calls", str(calls), "--subjects", str(subjects),
         *(["--then", str(then)] if then else [])],
        check=True, stderr=subprocess.DEVNULL)
    print(f"\ninstructions per request (callgrind, {calls} requests a phase after 20 "
          "not counted)")
    counts = {}
    for dump in workdir.glob("callgrind.out.*"):
        text = dump.read_text(errors="replace")
        phase = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        if phase:
            counts[phase.group(1)] = int(re.search(r"^totals: (\d+)", text, re.M).group(1))
    for phase in (*PHASES, *VIEW_PHASES):
        print(f"  {phase:<16}{counts[phase.replace('-', '_')] / calls:>14,.0f}")
    for phase in ("cached", "uncached"):
        print(f"  {phase}: {counts[phase] / counts['ceiling']:.2f}x the ceiling; middleware "
              f"and handler {(counts[phase] - counts[phase + '_view']) / calls:,.0f}")
    for label, total in sorted(counts.items()):
        if label.startswith("part_"):  # part_<calls>_<label>, from --then
            _, n, name = label.split("_", 2)
            print(f"  {name:<40}{total / int(n):>14,.0f}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=3000, help="requests per measurement")
    p.add_argument("--repeat", type=int, default=3, help="measurements per path (median)")
    p.add_argument("--subjects", type=int, default=2000, help="visitors")
    p.add_argument("--cprofile", choices=["cached", "uncached"], help="profile one path")
    p.add_argument("--then", type=Path, help="a Python file to run after the measurements, "
                   "given public_key, paths, stack, view, cpu_us and wsgi_environ (with "
                   "--instructions: counted(label, fn, inputs) instead of cpu_us)")
    p.add_argument("--instructions", action="store_true",
                   help="count instructions per request with callgrind instead of CPU time")
    p.add_argument("--child", metavar="PUBLIC_KEY", help=argparse.SUPPRESS)
    p.add_argument("--marks", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child_serve(args.child, calls=args.calls, subjects=args.subjects, marks=args.marks,
                    then=args.then)
        return 0
    with tempfile.TemporaryDirectory(prefix="recsite-prof-rec-") as workdir, \
            services.running() as service_env:
        os.environ.update(service_env)
        os.environ.update({
            "DJANGO_SETTINGS_MODULE": "bench.rec_settings",
            "SECRET_KEY": secrets.token_urlsafe(40), "DEBUG": "0", "LOG_LEVEL": "WARNING",
            "RECSITE_THROTTLE_KEY_RATE": "1000000/s", "RECSITE_THROTTLE_IP_RATE": "1000000/s",
            "RECSITE_TRAIN_WINDOW_DAYS": "10000",
            "RECSITE_MODEL_DIR": str(Path(workdir) / "models")})
        import django

        django.setup()
        started = time.monotonic()
        public_key = setup(args.subjects, Path(workdir) / "models")
        print(f"set up in {time.monotonic() - started:.0f} s", flush=True)
        if args.instructions:
            from django.core.handlers.wsgi import WSGIHandler

            cache_warm(caller(WSGIHandler()), public_key, args.subjects)
            instructions(public_key, calls=args.calls, subjects=args.subjects,
                         workdir=Path(workdir), then=args.then)
        else:
            measure(public_key, calls=args.calls, subjects=args.subjects,
                    repeat=args.repeat, cprofile=args.cprofile, then=args.then)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
