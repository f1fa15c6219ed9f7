"""Two datasets in one store: the sample set and a zh-only set in another layout, read through a column
mapping, run against the stand-in; the paper board has a column group each and their Average."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, SAMPLE
from tests.procs import Proc, run_cli, start_dispatcher, start_grader, start_standin

MAPPED = ROOT / "tests" / "data" / "amcqa-mapped.jsonl"
MAPPING_FILE = MAPPED.with_name("amcqa-mapped.fields.json")
MAPPING = "id=qid,question=stem,options=choices,answer=cop,answer_format=index1,level=difficulty,language=zh"
MAPPED_ITEMS = 10


@pytest.fixture(scope="module")
def standin() -> Iterator[Proc]:
    proc = start_standin("--answer-key", str(SAMPLE), "--latency-ms", "2")
    yield proc
    proc.stop()


def _run(standin: Proc, dataset: Path | str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--endpoint", standin.address, "--model", "standin", "--dataset", str(dataset), *extra)


def _overall_accuracy(db: Path, run_id: str) -> float:
    """Correct over graded answers (an item without a usable response is not graded), from the stored rows."""
    with duckdb.connect(str(db), read_only=True) as con:
        correct, graded = con.execute(
            "SELECT count(*) FILTER (WHERE correct), count(*) FILTER (WHERE NOT (error IS NOT NULL AND response IS NULL)) "
            "FROM results WHERE run_id = ?", [run_id]).fetchone()
    assert graded > 0
    return correct / graded


def test_the_paper_board_has_both_datasets_and_their_average(standin: Proc, tmp_path: Path) -> None:
    db = tmp_path / "two.duckdb"
    first = _run(standin, SAMPLE, "--db", str(db), "--run-id", "anesbench")
    assert first.returncode == 0, first.stderr
    second = _run(standin, MAPPED, "--fields-file", str(MAPPING_FILE), "--languages", "zh", "--db", str(db),
                  "--run-id", "amcqa")
    assert second.returncode == 0, second.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT dataset_name, count(*) FROM results JOIN runs ON runs.id = run_id "
                           "WHERE run_id = 'amcqa' GROUP BY ALL").fetchall() == [("amcqa-mapped", MAPPED_ITEMS)]
    board = run_cli("leaderboard", "--db", str(db), "--layout", "paper", "--format", "json")
    assert board.returncode == 0, board.stderr
    (line,) = json.loads(board.stdout)
    assert sorted(key for key in line if key.endswith("Overall")) == ["amcqa-mapped Overall", "anesbench-sample Overall"]
    anesbench, amcqa = _overall_accuracy(db, "anesbench"), _overall_accuracy(db, "amcqa")
    assert (line["anesbench-sample Overall"], line["amcqa-mapped Overall"]) == (f"{anesbench:.2f}", f"{amcqa:.2f}")
    assert line["Average"] == f"{(anesbench + amcqa) / 2:.2f}"
    report = run_cli("report", "--db", str(db), "--dataset", str(SAMPLE), "--out", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr


def test_the_report_reads_a_mapped_dataset_through_its_mapping(standin: Proc, tmp_path: Path) -> None:
    db = tmp_path / "report.duckdb"
    result = _run(standin, MAPPED, "--fields", MAPPING, "--languages", "zh", "--db", str(db))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "report.html"
    unmapped = run_cli("report", "--db", str(db), "--dataset", str(MAPPED), "--out", str(out))
    assert unmapped.returncode == 2 and not out.exists()
    mapped = run_cli("report", "--db", str(db), "--dataset", str(MAPPED), "--fields-file", str(MAPPING_FILE),
                     "--out", str(out))
    assert mapped.returncode == 0, mapped.stderr
    assert "amcqa-mapped" in out.read_text(encoding="utf-8")


def test_the_same_file_under_another_mapping_is_another_series(standin: Proc, tmp_path: Path) -> None:
    db = tmp_path / "series.duckdb"
    for run_id, mapping in (("index1", MAPPING), ("ids-from-stems", MAPPING.replace("id=qid", "id=stem"))):
        result = _run(standin, MAPPED, "--fields", mapping, "--languages", "zh", "--db", str(db), "--run-id", run_id)
        assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        (distinct,) = con.execute("SELECT count(DISTINCT dataset_sha256) FROM runs").fetchone()
    assert distinct == 2


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--fields", MAPPING, "--fields-file", str(MAPPING_FILE)], "--fields and --fields-file: give one of them"),
        (["--fields", "id=qid,question=stem"], "--fields: missing 'options' (required: id, question, options, "
                                               "answer, level)"),
        (["--fields", MAPPING.replace("index1", "letter")], f"{MAPPED}:1 (id amcqa-001): field 'cop': "
                                                             "expected an option letter, got 1"),
        (["--fields", MAPPING, "--languages", "en"], "the field mapping reads language 'zh' only"),
    ],
)
def test_a_bad_mapping_is_bad_input_and_nothing_is_written(tmp_path: Path, extra: list[str], needle: str) -> None:
    db = tmp_path / "never.duckdb"
    result = run_cli("run", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m", "--dataset", str(MAPPED),
                     "--languages", "zh", *extra, "--db", str(db))
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr
    assert not db.exists()


def test_through_a_dispatcher_the_client_maps_and_uploads(standin: Proc, tmp_path: Path) -> None:
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "anesbench.jsonl").write_bytes(SAMPLE.read_bytes())
    grader, _ = start_grader()
    try:
        dispatcher, _ = start_dispatcher(grader.address, tmp_path / "d.duckdb", "--datasets-dir", str(datasets))
        try:
            common = ["--dispatcher", dispatcher.address, "--languages", "zh"]
            mapped = _run(standin, MAPPED, *common, "--fields", MAPPING, "--run-id", "mapped")
            assert mapped.returncode == 0, mapped.stderr
            named = _run(standin, "anesbench", *common, "--fields", MAPPING, "--run-id", "named")
            assert named.returncode == 2
            assert ("--fields: 'anesbench' is not a local file: a dataset in the dispatcher's datasets directory is "
                    "in the AnesBench layout") in named.stderr
            board = run_cli("leaderboard", "--dispatcher", dispatcher.address, "--format", "json")
            assert board.returncode == 0, board.stderr
            overall = [row for row in json.loads(board.stdout) if row["level"] == "overall"]
            assert [(row["run_id"], row["dataset"], row["language"], row["total"] + row["errors"])
                    for row in overall] == [("mapped", "amcqa-mapped", "zh", MAPPED_ITEMS)]
        finally:
            dispatcher.stop()
    finally:
        grader.stop()
