"""manage.py evaluate on the committed slices of real data: no database, a table and JSON."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from recommend.algorithms.hybrid import DEFAULT_WEIGHTS
from recommend.datasets import dataset_read

DATA = Path(__file__).resolve().parent.parent / "data"


def run(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "report.json"
    call_command("evaluate", *args, "--json", str(out), verbosity=0)
    return json.loads(out.read_text())


def test_movielens_slice_all_models(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = run(tmp_path, "--format", "movielens", "--events", str(DATA / "movielens"))
    assert report["protocol"] == "each user's last 10% of events by time"
    assert [row["model"] for row in report["models"]] == [
        "popularity", "item_knn", "content", "session", "hybrid"]
    assert report["test_users"] == 5  # the slice has users 1 to 5
    assert set(report["hybrid_weights"]) >= {"knn", "content", "popularity", "session"}
    for row in report["models"]:
        for key in ("recall@10", "ndcg@20", "hitrate@20", "coverage@10"):
            assert 0.0 <= row[key] <= 1.0
        assert row["fit_seconds"] >= 0 and row["peak_memory_mb"] >= 0
    assert "item_knn" in capsys.readouterr().out  # the printed table


def test_online_retail_global_cut_without_tuning(tmp_path: Path) -> None:
    report = run(tmp_path, "--format", "online-retail", "--events",
                 str(DATA / "online_retail_300.csv.gz"), "--protocol", "global-time",
                 "--fraction", "0.3", "--no-tune", "--models", "popularity,item_knn,hybrid")
    assert report["protocol"].startswith("global time cut")
    assert report["hybrid_weights"] is None
    assert [row["model"] for row in report["models"]] == ["popularity", "item_knn", "hybrid"]


def test_online_retail_texts_are_the_product_descriptions() -> None:
    dataset = dataset_read(format="online-retail", path=DATA / "online_retail_300.csv.gz")
    assert dataset.item_texts is not None
    assert len(dataset.item_texts) == dataset.events.n_items == len(dataset.item_ids)
    assert any("HEART" in text for text in dataset.item_texts)


def test_npz_random_protocol(tmp_path: Path) -> None:
    import numpy as np
    from scipy import sparse

    matrix = sparse.random(50, 30, density=0.2, format="csr", random_state=0, dtype=np.float32)
    sparse.save_npz(tmp_path / "m.npz", matrix)
    report = run(tmp_path, "--format", "npz", "--events", str(tmp_path / "m.npz"))
    assert report["protocol"] == "random 20% of each user's items (seed 42)"
    # No texts, no times: content and session are skipped, not faked.
    assert [row["model"] for row in report["models"]] == ["popularity", "item_knn", "hybrid"]
    with pytest.raises(CommandError, match="has no timestamps"):
        run(tmp_path, "--format", "npz", "--events", str(tmp_path / "m.npz"),
            "--protocol", "user-time")


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "movielens", "--events", "/nonexistent"], "does not exist"),
    (["--format", "npz", "--events", str(DATA / "online_retail_300.csv.gz")], "not a scipy"),
    (["--format", "online-retail", "--events", str(DATA / "movielens" / "movies.csv.gz")],
     "wrong CSV header"),
    (["--format", "movielens", "--events", str(DATA / "movielens"), "--models", "magic"],
     "unknown magic"),
    (["--format", "movielens", "--events", str(DATA / "movielens"), "--fraction", "1.5"],
     "between 0 and 1"),
])
def test_bad_arguments_are_clear_errors(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("evaluate", *args, verbosity=0)


def test_retailrocket_events_file_weights_and_time_split(tmp_path: Path) -> None:
    # A format fixture in RetailRocket's events.csv layout (the real file is not shipped).
    lines = ["timestamp,visitorid,event,itemid,transactionid"]
    for visitor in range(12):
        for step, item in enumerate([visitor % 3, 3 + visitor % 3, 6 + visitor % 2]):
            lines.append(f"{1433221332117 + 3600_000 * step},{visitor},view,{item},")
        lines.append(f"{1433221332117 + 3600_000 * 5},{visitor},addtocart,{9 + visitor % 2},")
    (tmp_path / "events.csv").write_text("\n".join(lines) + "\n")
    dataset = dataset_read(format="retailrocket", path=tmp_path / "events.csv")
    assert dataset.item_texts is None and dataset.events.n_users == 12
    assert sorted(set(dataset.events.weights.tolist())) == [1.0, 3.0]
    report = run(tmp_path, "--format", "retailrocket", "--events", str(tmp_path / "events.csv"),
                 "--fraction", "0.25")
    assert report["protocol"] == "each user's last 25% of events by time"
    assert [row["model"] for row in report["models"]] == [
        "popularity", "item_knn", "session", "hybrid"]
    assert report["test_users"] == 12
    assert set(report["hybrid_weights"]) == set(DEFAULT_WEIGHTS) - {"content"}  # no texts
    with pytest.raises(CommandError, match="no user has a held-out item"):
        run(tmp_path, "--format", "retailrocket", "--events", str(tmp_path / "events.csv"),
            "--protocol", "global-time", "--fraction", "0.01")
