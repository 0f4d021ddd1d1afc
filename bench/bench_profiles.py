"""Profiles benchmark: full recompute, incremental update per event, K-Means selection.

    .venv/bin/python bench/bench_profiles.py [--repeat 3] [--events N] [--profiles 100000]

Starts PostgreSQL (fsync on, as in production) and Redis on free loopback
ports, migrates, and stores GENERATED events of RetailRocket's full shape
(bench/generate_events.py: 2.76 M events, 1.4 M visitors, 235 k items, 96.7 %
views, 2.5 % add-to-cart, 0.8 % purchases over 4.5 months, heavy-tailed item
popularity and visitor activity) straight into the event table with COPY, with
sessions cut at 30 minutes of inactivity, a generated device per visitor, a
generated price per item and its category in the catalog; at a purchase the
visitor logs in (the event carries a user id), so stitching runs too. Not real
data: it measures speed only.

1. Full recompute (profiles_recompute, as the nightly task runs it): every event
   read, folded, scored and written. Baseline in the same run: PostgreSQL alone
   aggregating the same table with one GROUP BY into a temporary table (the floor
   of any recompute that reads every event).
2. Incremental: the latest 20,000 events (by time) are held back, stored after the
   recompute (and a VACUUM ANALYZE of the profile table, as autovacuum would have
   done by the time new traffic arrives), and folded in batches of 500 with
   profile_batch_process (the task's service: profiles, links, three active rule
   segments). Per event, amortized over each batch, the first two batches (cold
   caches) left out; wall time, and the CPU time of this process plus its PostgreSQL
   backend (less noisy when others share the machine). Baseline: the naive way, one
   ORM read-modify-save of the profile per event, on 1,000 of those events.
3. K-Means with silhouette selection (clusters.kmeans_select, k = 2..8) on the
   features of 100,000 of the recomputed profiles. Baseline: one scikit-learn
   KMeans fit with k = 8 and the same n_init, no selection.

The machine is shared (2 cores): figures are medians and noisy. Writes
bench/results/profiles.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# The project root first: bench/ (this script's folder) must not shadow the app packages.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")

RESULTS = ROOT / "bench" / "results" / "profiles.json"
NAMES = np.array(["view_item", "add_to_cart", "purchase"], dtype=object)
DEVICES = np.array(["mobile", "desktop", "tablet"], dtype=object)
SESSION_GAP_MS = 30 * 60 * 1000
HELD_BACK, BATCH, WARM_UP = 20_000, 500, 2
N_CATEGORIES = 1_669


# --- data -----------------------------------------------------------------------------


def generated_events(n_events: int | None) -> dict[str, np.ndarray]:
    """The generator's arrays, optionally a random subset of events; sorted by time."""
    from bench.generate_events import load_or_generate

    arrays = load_or_generate()
    arrays = {k: v for k, v in arrays.items() if k != "GENERATED"}
    if n_events is not None and n_events < arrays["visitor"].size:
        keep = np.random.default_rng(1).choice(arrays["visitor"].size, n_events, replace=False)
        arrays = {k: v[keep] for k, v in arrays.items()}
    order = np.argsort(arrays["timestamp_ms"], kind="stable")
    return {k: v[order] for k, v in arrays.items()}


def sessions_of(visitor: np.ndarray, ts_ms: np.ndarray) -> np.ndarray:
    """A session number per event: a new one after 30 minutes without an event."""
    order = np.lexsort((ts_ms, visitor))
    v, t = visitor[order], ts_ms[order]
    new = np.ones(v.size, dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (t[1:] - t[:-1] > SESSION_GAP_MS)
    numbers = np.empty(v.size, dtype=np.int64)
    numbers[order] = np.cumsum(new)
    return numbers


def session_id(number: int) -> str:
    """A session id that looks like tracking's (32 scrambled hex digits)."""
    return f"{(number * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 128):032x}"


def hashes(site: Any, kind: str, ids: np.ndarray) -> np.ndarray:
    from tracking.services import subject_hash

    return np.array([subject_hash(site=site, kind=kind, raw_id=f"rr-{i}") for i in ids],
                    dtype=object)


def event_lines(site: Any, arrays: dict[str, np.ndarray], rows: np.ndarray,
                anon: np.ndarray, user: np.ndarray, device: np.ndarray,
                price: np.ndarray, session: np.ndarray) -> list[str]:
    """COPY text lines of the event table for these row numbers."""
    visitor, item, kind = arrays["visitor"][rows], arrays["item"][rows], arrays["event"][rows]
    stamps = np.datetime_as_string(arrays["timestamp_ms"][rows].astype("datetime64[ms]"),
                                   unit="ms")
    lines = []
    for i, row in enumerate(rows):
        buyer = kind[i] == 2
        lines.append("\t".join((
            str(site.pk), f"00000000-0000-4000-8000-{row:012x}", "0", anon[visitor[i]],
            user[visitor[i]] if buyer else "\\N", session_id(int(session[row])), NAMES[kind[i]],
            str(item[i]), stamps[i] + "Z", repr(float(price[item[i]])), "", "1", "\\N", "\\N",
            "", "import", f'{{"device": "{DEVICES[device[visitor[i]]]}"}}')))
    return lines


def copy_lines(table: str, columns: str, lines: list[str]) -> None:
    from django.db import connection

    connection.ensure_connection()
    with connection.connection.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, len(lines), 50_000):
            copy.write("\n".join(lines[start:start + 50_000]) + "\n")
    connection.connection.commit()


EVENT_COLUMNS = ("site_id, event_id, item_index, subject, user_subject, session, name, item_id, "
                 "ts, value, currency, quantity, engaged_ms, scroll_pct, rec_token, source, "
                 "context")


def load(site: Any, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Store the catalog and all events but the latest HELD_BACK; return the held-back rows
    and their COPY lines."""
    from tracking.models import Item

    rng = np.random.default_rng(3)
    n_visitors = int(arrays["visitor"].max()) + 1
    n_items = int(arrays["item"].max()) + 1
    anon, user = hashes(site, "a", np.arange(n_visitors)), hashes(site, "u",
                                                                  np.arange(n_visitors))
    device = rng.choice(3, n_visitors, p=[0.55, 0.4, 0.05])
    price = np.round(rng.lognormal(3.0, 0.8, n_items), 2)
    session = sessions_of(arrays["visitor"], arrays["timestamp_ms"])
    Item.objects.bulk_create(
        [Item(site=site, external_id=str(i), category=f"cat-{i % N_CATEGORIES}",
              price=float(price[i])) for i in range(n_items)], batch_size=5000)
    n = arrays["visitor"].size
    base, tail = np.arange(n - HELD_BACK), np.arange(n - HELD_BACK, n)
    for start in range(0, base.size, 500_000):
        chunk = base[start:start + 500_000]
        copy_lines("tracking_event", EVENT_COLUMNS,
                   event_lines(site, arrays, chunk, anon, user, device, price, session))
    return tail, event_lines(site, arrays, tail, anon, user, device, price, session)


# --- measurements ---------------------------------------------------------------------


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def sql_floor(site: Any) -> float:
    """PostgreSQL alone: aggregate every event per subject into a temporary table."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "CREATE TEMP TABLE floor ON COMMIT DROP AS SELECT COALESCE(user_subject, subject) "
            "AS owner, count(*) AS events, min(ts) AS first, max(ts) AS last, "
            "count(DISTINCT session) AS sessions, count(DISTINCT ts::date) AS days, "
            "sum(value) FILTER (WHERE name = 'purchase') AS monetary "
            "FROM tracking_event WHERE site_id = %s GROUP BY 1", [site.pk])
        return time.perf_counter() - started


def naive_per_event(site: Any, pks: list[int]) -> float:
    """The naive incremental: one ORM read-modify-save of the owner's profile per event."""
    from django.db import transaction

    from profiles.models import Profile
    from tracking.models import Event

    started = time.perf_counter()
    for pk in pks:
        with transaction.atomic():
            event = Event.objects.get(pk=pk)
            owner = event.user_subject or event.subject
            profile, _ = Profile.objects.select_for_update().get_or_create(
                site=site, subject=owner,
                defaults={"first_seen": event.ts, "last_seen": event.ts})
            profile.events += 1
            profile.by_type[event.name] = profile.by_type.get(event.name, 0) + 1
            sessions = set(profile.session_keys.split()) | {event.session[:12]}
            profile.session_keys = " ".join(sorted(sessions))
            profile.sessions = len(sessions)
            profile.last_seen = max(profile.last_seen, event.ts)
            if event.name == "purchase":
                profile.monetary += event.value or 0.0
            profile.save()
    return (time.perf_counter() - started) / len(pks)


def rule_segments(site: Any) -> None:
    from profiles.models import Condition, Segment

    for slug, condition in [
        ("cart-in-a-day", {"kind": "events", "event_name": "add_to_cart", "within_hours": 24}),
        ("best", {"kind": "rfm", "values": ["Champions", "Loyal"]}),
        ("lapsed", {"kind": "last_seen", "days": 30}),
    ]:
        segment = Segment.objects.create(site=site, name=slug, slug=slug)
        Condition.objects.create(segment=segment, **condition)


def backend_cpu_seconds() -> float | None:
    """CPU time used so far by this connection's PostgreSQL backend (Linux /proc; None
    elsewhere): with the process's own, a figure less noisy than wall time on a shared
    machine."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def incremental(site: Any, lines: list[str]) -> tuple[list[float], list[float], float]:
    """Store the held-back events, fold them in batches; per-event seconds of each batch
    (wall, and CPU of this process plus its PostgreSQL backend) and of the naive way."""
    from profiles.services import profile_batch_process
    from tracking.models import Event

    watermark = Event.objects.filter(site=site).order_by("-pk").values_list("pk", flat=True)[0]
    copy_lines("tracking_event", EVENT_COLUMNS, lines)
    pks = list(Event.objects.filter(site=site, pk__gt=watermark).order_by("pk")
               .values_list("pk", flat=True))
    naive_pks, pks = pks[:1000], pks[1000:]
    per_event, cpu_per_event = [], []
    for start in range(0, len(pks), BATCH):
        batch = pks[start:start + BATCH]
        backend, own = backend_cpu_seconds(), time.process_time()
        seconds, _ = timed(profile_batch_process, site_id=site.pk, event_pks=batch)
        own = time.process_time() - own
        backend_after = backend_cpu_seconds()
        per_event.append(seconds / len(batch))
        if backend is not None and backend_after is not None:
            cpu_per_event.append((own + backend_after - backend) / len(batch))
    return per_event[WARM_UP:], cpu_per_event[WARM_UP:], naive_per_event(site, naive_pks)


def kmeans(site: Any, n_profiles: int, repeat: int) -> tuple[list[float], list[float], int]:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    from profiles import clusters
    from profiles.clustering import profile_columns
    from profiles.conf import profile_settings
    from profiles.models import SiteState
    from profiles.services import site_now

    columns = profile_columns(site=site, as_of=site_now(SiteState.objects.get(site=site)))
    rows = np.random.default_rng(5).choice(len(columns.subjects),
                                           min(n_profiles, len(columns.subjects)),
                                           replace=False)
    features = clusters.Features(matrix=columns.features.matrix[rows],
                                 raw=columns.features.raw[rows], names=columns.features.names)
    selection, single, k = [], [], 0
    for _ in range(repeat):
        seconds, fit = timed(clusters.kmeans_select, features,
                             k_range=profile_settings.CLUSTER_K_RANGE,
                             fit_sample=profile_settings.CLUSTER_FIT_SAMPLE,
                             silhouette_sample=profile_settings.SILHOUETTE_SAMPLE)
        selection.append(seconds)
        k = fit.k
        scaled = StandardScaler().fit_transform(features.matrix)
        seconds, _ = timed(KMeans(n_clusters=8, n_init=3, random_state=0).fit, scaled)
        single.append(seconds)
    return selection, single, k


# --- main -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=None,
                        help="a random subset of the generated events (quick runs)")
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()

    from devtools import services

    with services.running(durable=True) as env:
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        report = run(args)
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.json}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection

    from profiles.models import Profile, SiteState
    from profiles.services import profiles_recompute
    from tracking.models import Event
    from tracking.services import site_create

    site = site_create(name="bench", origins=["https://bench.example"]).site
    SiteState.objects.create(site=site, clock_mode=SiteState.Clock.DATA)
    seconds, arrays = timed(generated_events, args.events)
    print(f"GENERATED events ready in {seconds:.1f} s", flush=True)
    seconds, (_, tail_lines) = timed(load, site, arrays)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE tracking_event")
    stored = Event.objects.filter(site=site).count()
    print(f"stored {stored:,} events (COPY) in {seconds:.1f} s", flush=True)

    recompute, floor = [], []
    result = None
    for run_number in range(args.repeat):
        seconds, result = timed(profiles_recompute, site_id=site.pk)
        recompute.append(seconds)
        floor.append(sql_floor(site))
        print(f"recompute {run_number + 1}: {seconds:.1f} s ({result.profiles:,} profiles, "
              f"{result.events:,} events); SQL GROUP BY floor {floor[-1]:.1f} s", flush=True)
    with connection.cursor() as cursor:
        seconds, _ = timed(cursor.execute, "VACUUM ANALYZE profiles_profile")
    print(f"VACUUM ANALYZE of the profile table: {seconds:.1f} s", flush=True)
    rule_segments(site)
    per_event, cpu_per_event, naive = incremental(site, tail_lines)
    cpu_median = statistics.median(cpu_per_event) * 1e6 if cpu_per_event else None
    print(f"incremental: median {statistics.median(per_event) * 1e6:.0f} us per event over "
          f"{len(per_event)} batches of {BATCH} (CPU of the process and its PostgreSQL "
          f"backend: {cpu_median or 0:.0f} us); naive per-event ORM {naive * 1e6:.0f} us",
          flush=True)
    selection, single, k = kmeans(site, args.profiles, args.repeat)
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg()},
        "data": {"GENERATED": True, "events": stored + HELD_BACK, "held_back": HELD_BACK,
                 "profiles": Profile.objects.filter(site=site).count(),
                 "commit": _commit()},
        "recompute_seconds": recompute, "recompute_median": statistics.median(recompute),
        "sql_floor_seconds": floor, "sql_floor_median": statistics.median(floor),
        "recompute_events": result.events if result else 0,
        "incremental_us_per_event": [round(s * 1e6, 1) for s in per_event],
        "incremental_median_us": statistics.median(per_event) * 1e6,
        "incremental_mean_us": statistics.mean(per_event) * 1e6,
        "incremental_cpu_us_per_event": [round(s * 1e6, 1) for s in cpu_per_event],
        "incremental_cpu_median_us": cpu_median,
        "naive_us_per_event": naive * 1e6,
        "kmeans_profiles": min(args.profiles, Profile.objects.filter(site=site).count()),
        "kmeans_selection_seconds": selection,
        "kmeans_selection_median": statistics.median(selection), "kmeans_k": k,
        "kmeans_single_fit_seconds": single,
        "kmeans_single_fit_median": statistics.median(single),
    }


def _commit() -> str:
    """The checkout's commit (worktrees included), or "?" outside git."""
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True)
    return done.stdout.strip() or "?"


def print_report(r: dict[str, Any]) -> None:
    print("\nGENERATED events of RetailRocket's shape (not real data); 2 shared cores, "
          f"load average at the end {r['machine']['load_average'][0]:.2f}")
    print(f"{'measure':58} {'median':>10} {'baseline':>22}")
    print(f"{'full recompute, ' + format(r['recompute_events'], ',') + ' events':58} "
          f"{r['recompute_median']:>8.1f} s {r['sql_floor_median']:>10.1f} s SQL floor")
    print(f"{'incremental, per event, batches of 500 (3 rule segments)':58} "
          f"{r['incremental_median_us']:>7.0f} us {r['naive_us_per_event']:>8.0f} us naive ORM")
    if r.get("incremental_cpu_median_us") is not None:
        print(f"{'  the same, CPU of the process + its PostgreSQL backend':58} "
              f"{r['incremental_cpu_median_us']:>7.0f} us")
    label = f"K-Means, k by silhouette 2..8, {r['kmeans_profiles']:,} profiles"
    print(f"{label:58} {r['kmeans_selection_median']:>8.1f} s "
          f"{r['kmeans_single_fit_median']:>8.1f} s one fit k=8 (chose k={r['kmeans_k']})")




if __name__ == "__main__":
    main()
