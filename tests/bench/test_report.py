"""bench/report.py: report.md, plots and README blocks from a report.json of invented figures."""

import json
import re
from pathlib import Path

import pytest

from bench import report as writer
from tests.bench import results

PNG = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[2]


def test_report_files_hold_the_figures_of_every_benchmark(tmp_path):
    report = results.report()
    writer.write(report, tmp_path)

    assert json.loads((tmp_path / "report.json").read_text())["benchmarks"] == report["benchmarks"]
    md = (tmp_path / "report.md").read_text()
    ingest = report["benchmarks"]["ingest"]["result"]["medians"]
    assert f"**{ingest['A']['events_per_s']:,}**" in md
    assert f"| P: collect, web only, 15,000 events/s offered | {ingest['P']['events_per_s']:,} " \
        "accepted |" in md and "| **123.4** |" in md
    assert f"{ingest['B']['events_per_s']:,} accepted, {ingest['B']['processed_per_s']:,}" in md
    assert report["benchmarks"]["ingest"]["result"]["targets"][0] in md
    lag = report["benchmarks"]["sustained"]["result"]["lag"]
    assert f"p99 **{lag['p99_s']:.3f} s**" in md
    assert "| **ours: item-kNN** | 0.121 / 0.083 | 0.395 / 0.222 |" in md
    assert "| 5.68 M |" in md  # collect's 5,678,000 instructions
    assert "+121.5 ms" in md  # first visit 211.5 ms against the cold baseline's 90.0
    assert "53.0 s** (52.0, 53.0, 54.0)" in md and "(15x)" in md  # 3,300 / 220 us
    assert ">= 2,000, p99 <= 20 ms: met" in md  # cached 2,100 req/s, p99 19.5 ms
    assert ">= 1,000, p99 <= 40 ms: **not met**" in md  # uncached 550 req/s
    assert "10 % of a core on average" in md  # the entries' contention
    assert "| 5.5 | 15.0 |" in md and "p99 1.10x alone (target <= 1.20x): met" in md


def test_plots_are_drawn_and_linked(tmp_path):
    writer.write(results.report(), tmp_path)
    md = (tmp_path / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", md)
    assert sorted(linked) == sorted(writer.PLOTS)
    for name in linked:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name


def test_plots_leave_out_what_was_not_run(tmp_path):
    writer.write(results.report(only=("profiles",)), tmp_path)
    assert not list(tmp_path.glob("*.png"))
    assert "## Profiles" in (tmp_path / "report.md").read_text()


README = """intro, kept as it is
<!-- bench:ingest -->
| the old table |
<!-- /bench:ingest -->
prose between, kept
<!-- bench:sustained -->
| not measured yet |
<!-- /bench:sustained -->
the end
"""


def test_readme_blocks_are_replaced_and_nothing_else():
    text, replaced = writer.readme_update(README, results.report(only=("ingest",)))

    assert replaced == ["ingest"]
    assert "the old table" not in text and "**12,345**" in text
    assert "| not measured yet |" in text  # no sustained result: left as it was
    outside = re.sub(r"<!-- bench:(\S+) -->.*?<!-- /bench:\1 -->", "", text, flags=re.DOTALL)
    assert outside == re.sub(r"<!-- bench:(\S+) -->.*?<!-- /bench:\1 -->", "", README,
                             flags=re.DOTALL)
    assert writer.readme_update(text, results.report(only=("ingest",)))[0] == text  # idempotent


def test_readme_written_by_write(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    replaced = writer.write(results.report(), tmp_path, readme=readme)
    assert replaced == ["ingest", "sustained"]
    assert "| not measured yet |" not in readme.read_text()


def test_quick_reports_and_broken_markers_never_reach_the_readme():
    with pytest.raises(ValueError, match="quick"):
        writer.readme_update(README, results.report(quick=True))
    with pytest.raises(ValueError, match="unpaired"):
        writer.readme_update("<!-- bench:ingest -->\n| x |\n", results.report())
    with pytest.raises(ValueError, match="no table"):
        writer.readme_update("<!-- bench:nope -->\n<!-- /bench:nope -->\n", results.report())


def test_the_projects_readme_markers_are_paired_and_known():
    text = (ROOT / "README.md").read_text()
    names = re.findall(r"<!-- bench:([a-z-]+) -->", text)
    assert names, "the README's figure tables carry bench markers"
    assert sorted(names) == sorted(re.findall(r"<!-- /bench:([a-z-]+) -->", text))
    assert set(names) <= set(writer.BLOCKS)
    assert len(names) == len(set(names))
