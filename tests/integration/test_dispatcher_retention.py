"""prune and backup through a serving dispatcher: the board and the run list survive, a backup restores the board."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SAMPLE
from tests.procs import run_cli, start_dispatcher, start_grader, start_standin


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A serving dispatcher holding three runs: "old" and "new" of one series, "other" of another."""
    folder = tmp_path_factory.mktemp("retention")
    model = start_standin("--answer-key", str(SAMPLE), "--served-model", "model-one,model-two")
    grader, _ = start_grader()
    dispatcher, _ = start_dispatcher(grader.address, folder / "d.duckdb")
    try:
        for run_id, name in (("old", "model-one"), ("new", "model-one"), ("other", "model-two")):
            result = run_cli("run", "--dispatcher", dispatcher.address, "--endpoint", model.address, "--model", name,
                             "--dataset", str(SAMPLE), "--languages", "en,zh", "--run-id", run_id, "--no-progress",
                             timeout=180)
            assert result.returncode == 0, result.stderr
        yield dispatcher.address
    finally:
        for proc in (dispatcher, grader, model):
            proc.stop()


def _json(*args: str) -> object:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _views(*source: str) -> tuple[object, object, object]:
    """The default board, the board of every run, and the run list."""
    return (_json("leaderboard", *source, "--format", "json"),
            _json("leaderboard", *source, "--run", "old", "--run", "new", "--run", "other", "--format", "json"),
            _json("runs", *source, "--format", "json"))


def test_a_backup_taken_while_serving_restores_the_same_board(address: str, tmp_path: Path) -> None:
    out = tmp_path / "backup.duckdb"
    result = run_cli("backup", "--dispatcher", address, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert run_cli("backup", "--dispatcher", address, "--out", str(out)).returncode == 2  # no --force
    restored = tmp_path / "restored" / "anesbench.duckdb"
    restored.parent.mkdir()
    shutil.copyfile(out, restored)  # the documented restore: the file copied into place
    assert _views("--db", str(restored)) == _views("--dispatcher", address)


def test_prune_through_the_dispatcher_keeps_the_board_and_the_run_list(address: str) -> None:
    before = _views("--dispatcher", address)
    result = run_cli("prune", "--dispatcher", address, "--keep-last", "1", "--keep-aggregates")
    assert result.returncode == 0, result.stderr
    assert "pruned 1 run(s)" in result.stdout and ": old;" in result.stdout
    assert _views("--dispatcher", address) == before
    exported = run_cli("export", "--dispatcher", address, "--run", "old")
    assert exported.returncode == 2 and "was pruned" in exported.stderr, exported.stderr  # its replies are gone
