"""compare, export and report from the command line, on runs made against the stand-in server."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from anesbench.store.export import EXPORT_NAMES
from tests.conftest import SAMPLE, SAMPLE_ITEMS, make_records
from tests.procs import run_cli, start_standin

ITEMS = SAMPLE_ITEMS


def _bad_input(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two models on the sample in both languages, and a third run on another dataset."""
    folder = tmp_path_factory.mktemp("runs")
    path = folder / "a.duckdb"
    other = folder / "other.jsonl"
    other.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in make_records(9)), encoding="utf-8")
    standin = start_standin("--answer-key", str(SAMPLE), "--served-model", "model-one,model-two")
    try:
        for run_id, model, dataset, *extra in (("m1", "model-one", SAMPLE), ("m2", "model-two", SAMPLE),
                                               ("elsewhere", "model-one", other),
                                               ("sampled", "model-one", other, "--samples", "3", "--temperature", "0.7")):
            result = run_cli("run", "--endpoint", standin.address, "--model", model, "--dataset", str(dataset),
                             "--languages", "en,zh", "--db", str(path), "--run-id", run_id, "--no-progress",
                             "--concurrency", "8", *extra, timeout=180)
            assert result.returncode == 0, result.stderr
    finally:
        standin.stop()
    yield path


def test_compare_pairs_two_runs(db: Path) -> None:
    result = run_cli("compare", "m1", "m2", "--db", str(db), "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    cells = {(c["language"], c["level"]): c for c in data["cells"]}
    overall = cells[("all", "overall")]
    assert overall["pairs"] == 2 * ITEMS
    assert overall["difference"] == pytest.approx(overall["accuracy_a"] - overall["accuracy_b"])
    assert overall["ci_low"] <= overall["difference"] <= overall["ci_high"]
    assert 0 <= overall["p_value"] <= 1
    # the same command gives the same interval (seeded bootstrap)
    assert json.loads(run_cli("compare", "m1", "m2", "--db", str(db), "--format", "json").stdout) == data
    table = run_cli("compare", "m1", "m2", "--db", str(db)).stdout
    assert "McNemar p" in table and "won" in table


def test_one_run_in_both_languages_gives_en_zh_agreement(db: Path) -> None:
    result = run_cli("compare", "m1", "--db", str(db), "--format", "json")
    assert result.returncode == 0, result.stderr
    overall = next(c for c in json.loads(result.stdout)["cells"] if c["level"] == "overall")
    assert overall["pairs"] <= ITEMS and 0 <= overall["same_letter"] <= 1


@pytest.mark.parametrize(("args", "needle"), [
    (("m1", "m1"), "same run 'm1'"),
    (("m1", "nope"), "'nope'"),
    (("m1", "elsewhere"), "different datasets"),
])
def test_compare_bad_input(db: Path, args: tuple[str, str], needle: str) -> None:
    _bad_input(run_cli("compare", *args, "--db", str(db)), needle)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_writes_one_row_per_result(db: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"m1.{fmt}"
    result = run_cli("export", "--run", "m1", "--db", str(db), "--format", fmt, "--out", str(out))
    assert result.returncode == 0, result.stderr
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    else:
        rows = pq.read_table(out).to_pylist()
    assert len(rows) == 2 * ITEMS
    assert tuple(rows[0]) == EXPORT_NAMES
    assert {(r["item_id"], r["language"]) for r in rows}.__len__() == 2 * ITEMS
    assert {r["outcome"] for r in rows} <= {"correct", "wrong", "unanswered", "error"}
    assert all(r["response"] for r in rows)


def test_export_to_stdout_matches_the_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "m1.jsonl"
    assert run_cli("export", "--run", "m1", "--db", str(db), "--out", str(out)).returncode == 0
    streamed = run_cli("export", "--run", "m1", "--db", str(db))
    assert streamed.returncode == 0, streamed.stderr
    key = lambda r: (r["item_id"], r["language"], r["sample"])  # noqa: E731
    from_file = sorted((json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()), key=key)
    from_stdout = sorted((json.loads(line) for line in streamed.stdout.splitlines()), key=key)
    assert [{k: r[k] for k in ("item_id", "predicted", "outcome", "response")} for r in from_stdout] == \
           [{k: r[k] for k in ("item_id", "predicted", "outcome", "response")} for r in from_file]


def test_export_refuses_an_existing_file_without_force(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "taken.jsonl"
    out.write_text("keep me\n")
    _bad_input(run_cli("export", "--run", "m1", "--db", str(db), "--out", str(out)),
               f"error: --out: {out} already exists; pass --force to replace it")
    assert out.read_text() == "keep me\n"
    assert run_cli("export", "--run", "m1", "--db", str(db), "--out", str(out), "--force").returncode == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2 * ITEMS
    assert [p.name for p in tmp_path.iterdir()] == ["taken.jsonl"]  # no temporary file left behind


def test_export_of_an_unknown_run_writes_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    _bad_input(run_cli("export", "--run", "nope", "--db", str(db), "--format", "csv", "--out", str(out)), "'nope'")
    assert list(tmp_path.iterdir()) == []


def test_sampled_run_shows_mean_majority_and_agreement_next_to_its_configuration(db: Path) -> None:
    rows = json.loads(run_cli("leaderboard", "--db", str(db), "--run", "sampled", "--format", "json").stdout)
    overall = next(row for row in rows if row["level"] == "overall" and row["language"] == "en")
    assert overall["total"] == 27 and overall["samples"] == 3
    assert 0 <= overall["majority_accuracy"] <= 1 and 0 <= overall["agreement"] <= 1
    assert overall["mean_accuracy"] == pytest.approx(overall["accuracy"])  # no errors: the same 9 items per sample
    table = run_cli("leaderboard", "--db", str(db), "--run", "sampled").stdout
    assert "model-one [T=0.7, samples=3]" in table and "majority" in table


def test_runs_json_carries_the_validity_record(db: Path) -> None:
    (run,) = [r for r in json.loads(run_cli("runs", "--db", str(db), "--format", "json").stdout) if r["id"] == "m1"]
    assert len(run["dataset_sha256"]) == 64 and len(run["prompt_sha256"]) == 64
    assert (run["max_tokens"], run["temperature"], run["samples"]) == (2048, 0.0, 1)
    assert run["harness_version"] and run["extractor_version"]
