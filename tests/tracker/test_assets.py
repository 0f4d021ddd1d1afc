"""The built tracker files: within their size budgets, identical to a fresh build of the
sources, and the JavaScript unit tests (Node's test runner) pass."""

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

TRACKER = Path(__file__).resolve().parents[2] / "static" / "tracker"
DIST = TRACKER / "dist"
BUILT = ["tracker.min.js", "consent.min.js", "consent.min.css"]


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("Node.js is missing: run the tests with scripts/test, which installs it")
    return path


def gzipped(*names: str) -> int:
    return sum(len(gzip.compress((DIST / name).read_bytes(), compresslevel=9, mtime=0))
               for name in names)


def test_the_tracker_is_within_3072_bytes_gzipped():
    assert gzipped("tracker.min.js") <= 3072


def test_the_banner_and_its_stylesheet_are_within_2560_bytes_gzipped():
    assert gzipped("consent.min.js", "consent.min.css") <= 2560


def test_the_committed_build_is_what_the_sources_build(tmp_path):
    if not (TRACKER / "node_modules" / "esbuild").is_dir():
        pytest.fail("static/tracker/node_modules is missing: run `npm ci` there "
                    "(scripts/test does it)")
    result = subprocess.run([node(), "build.mjs", str(tmp_path)], cwd=TRACKER,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    stale = [name for name in BUILT
             if (tmp_path / name).read_bytes() != (DIST / name).read_bytes()]
    assert not stale, f"{stale} differ from a fresh build: run `npm run build` in static/tracker"


def test_the_javascript_unit_tests_pass():
    result = subprocess.run([node(), "--test", "test/"], cwd=TRACKER, capture_output=True,
                            text=True, timeout=180)
    summary = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in summary and not any(line == "# pass 0" for line in summary), summary
