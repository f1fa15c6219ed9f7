"""The README's main command, end to end: the sample set through the stand-in, leaderboard printed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.procs import ROOT, run_cli


def test_demo_script_prints_the_leaderboard_of_a_completed_run(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    result = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DEMO_DB": str(db)}, check=False)
    assert result.returncode == 0, result.stderr
    assert "a pipeline check, not a model" in result.stdout
    assert "run_id=demo status=completed done=132 total=132 failed=0" in result.stdout
    board = json.loads(run_cli("leaderboard", "--db", str(db), "--format", "json").stdout)
    printed = result.stdout.split("\n\n", 1)[1]
    for row in board:
        if row["level"] == "overall":
            assert f"{row['accuracy']:.2f}" in printed
    assert {row["language"] for row in board} == {"en", "zh"}
