"""`--elicit` through the dispatcher: the mode travels in the RunSpec, the follow-ups and the board come back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from anesbench.inference.constraints import read_letter
from tests.conftest import SAMPLE
from tests.procs import Proc, run_cli, start_dispatcher, start_grader, start_standin

LIMIT = "10"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Proc, Proc]]:
    """A llama.cpp-playing stand-in and a dispatcher (with its grader)."""
    started: list[Proc] = []
    try:
        started.append(start_standin("--answer-key", str(SAMPLE), "--constraints", "llamacpp",
                                     "--unanswerable-rate", "0.3", "--change-mind-rate", "0.3"))
        grader, _ = start_grader()
        started.append(grader)
        dispatcher, _ = start_dispatcher(grader.address, tmp_path_factory.mktemp("d") / "d.duckdb")
        started.append(dispatcher)
        yield started[0], dispatcher
    finally:
        for proc in reversed(started):
            proc.stop()


def _run(services: tuple[Proc, Proc], *extra: str) -> subprocess.CompletedProcess[str]:
    standin, dispatcher = services
    return run_cli("run", "--dispatcher", dispatcher.address, "--endpoint", standin.address, "--model", "standin",
                   "--dataset", str(SAMPLE), "--limit", LIMIT, "--languages", "en,zh", "--no-progress", *extra,
                   timeout=180)


def test_elicit_all_through_the_dispatcher_stores_and_exports_every_follow_up(
    services: tuple[Proc, Proc], tmp_path: Path
) -> None:
    standin, dispatcher = services
    result = _run(services, "--run-id", "remote-all", "--elicit", "all")
    assert result.returncode == 0, result.stderr
    (run,) = [r for r in json.loads(run_cli("runs", "--dispatcher", dispatcher.address, "--format", "json").stdout)
              if r["id"] == "remote-all"]
    assert (run["elicit"], run["elicit_constraint"], run["elicit_prompt"]) == ("all", "grammar", "anesbench-elicit-1")
    exported = run_cli("export", "--run", "remote-all", "--dispatcher", dispatcher.address)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 2 * int(LIMIT)
    for row in rows:  # every reply asked again; the grammar makes each follow-up one letter
        assert row["elicited"] is True and row["elicitation"] == "done"
        assert read_letter(row["elicitation_response"], "ABCDE", "grammar") == row["predicted"]
        assert json.loads(row["elicitation_params"])["constraint"] == "grammar"
    embedded_db = tmp_path / "e.duckdb"
    embedded = run_cli("run", "--endpoint", standin.address, "--model", "standin", "--dataset", str(SAMPLE),
                       "--limit", LIMIT, "--languages", "en,zh", "--elicit", "all", "--db", str(embedded_db),
                       "--no-progress")
    assert embedded.returncode == 0, embedded.stderr

    def board(*source: str) -> list[dict]:
        listed = run_cli("leaderboard", *source, "--format", "json")
        assert listed.returncode == 0, listed.stderr
        return [{k: v for k, v in row.items() if k != "run_id"} for row in json.loads(listed.stdout)]

    remote = board("--dispatcher", dispatcher.address)
    assert remote == board("--db", str(embedded_db))
    assert all(row["elicit"] == "all" and row["elicited"] == row["total"] for row in remote)
    compared = run_cli("compare", "remote-all", "--dispatcher", dispatcher.address, "--format", "json")
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["rules_vs_elicited"][0]["run_id"] == "remote-all"


def test_a_dispatcher_run_resumed_with_another_elicit_mode_is_refused(services: tuple[Proc, Proc]) -> None:
    assert _run(services, "--run-id", "remote-off", "--elicit", "off").returncode == 0
    refused = _run(services, "--run-id", "remote-off")
    assert refused.returncode == 2 and "elicit" in refused.stderr, refused.stderr
