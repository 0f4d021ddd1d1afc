"""bench/ingest.py's verdicts on the issue's targets, from medians of INVENTED figures."""

from typing import Any

import pytest

from bench import report as report_writer
from bench.ingest import targets
from tests.bench.results import _phase


def report(**medians: dict[str, Any]) -> dict[str, Any]:
    return {"config": {"rate": 8000, "a_rate": 15000, "connections": 32},
            "medians": medians, "backlog_verdict": {"B": "steady", "R": "steady"}}


def verdict(lines: list[str], start: str) -> str:
    (line,) = [line for line in lines if line.startswith(start)]
    return line.rsplit("-> ", 1)[1]


@pytest.mark.parametrize(("accepted", "p99", "expected"), [
    (14_990, 30.0, "met"),  # the schedule's rounding: all of it taken
    (14_800, 30.0, "NOT met"),  # 1.3 % short: the server did not keep up
    (15_000, 50.1, "NOT met"),
])
def test_latency_target_is_judged_at_the_offered_load(accepted, p99, expected):
    lines = targets(report(P=_phase(accepted, 10.0, p99)))
    assert verdict(lines, "target A:") == expected


def test_an_error_fails_the_paced_phase_whatever_its_rate():
    lines = targets(report(P={**_phase(15_000, 10.0, 20.0), "non_2xx": 3}))
    assert verdict(lines, "target A:") == "NOT met"


@pytest.mark.parametrize(("accepted", "processed", "expected"), [
    (7_998, 7_983, "met"),
    (7_917, 7_881, "NOT met"),  # 1 % short: saturated
    (8_000, 7_800, "NOT met"),  # accepted, but not processed as it came
])
def test_end_to_end_at_the_offered_rate(accepted, processed, expected):
    lines = targets(report(R=_phase(accepted, 5.0, 40.0, processed_per_s=processed)))
    assert verdict(lines, "target R:") == expected


def test_flat_out_phases_must_reach_the_figure_itself():
    lines = targets(report(A=_phase(14_999, 30.0, 40.0),
                           B=_phase(9_000, 60.0, 90.0, processed_per_s=7_990)))
    assert verdict(lines, "target A flat out:") == "NOT met"
    assert verdict(lines, "target B:") == "NOT met"


@pytest.mark.parametrize(("taken", "offered", "expected"), [
    (7_967, 8_000, True),  # the sustained run at d6dcfcb: 99.6 % of the schedule
    (7_917, 8_000, False),
    (7_000, 7_000, False),  # all of a load below the target
])
def test_the_sustained_run_is_judged_by_the_same_rule(taken, offered, expected):
    assert report_writer._paced_in_full(taken, offered) is expected
