"""`anesbench up`: grader + dispatcher + stand-in on loopback, a run through them, a clean stop."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import SAMPLE
from tests.procs import CLI, ROOT, run_cli


def test_up_serves_a_run_and_stops_cleanly(tmp_path: Path) -> None:
    up = subprocess.Popen([*CLI, "up", "--standin", "--dispatcher-port", "0", "--db", str(tmp_path / "up.duckdb")],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        addresses: dict[str, str] = {}
        deadline = time.monotonic() + 60
        assert up.stdout is not None
        while len(addresses) < 3 and time.monotonic() < deadline:
            line = up.stdout.readline()
            if not line:
                break
            name, _, rest = line.partition("  ")
            addresses[name.strip()] = rest.split()[0]
        assert set(addresses) == {"stand-in model server", "grader", "dispatcher"}, addresses
        run = run_cli("run", "--dispatcher", addresses["dispatcher"], "--endpoint", addresses["stand-in model server"],
                      "--model", "standin", "--dataset", str(SAMPLE), "--run-id", "up")
        assert run.returncode == 0, run.stderr
        board = run_cli("leaderboard", "--dispatcher", addresses["dispatcher"])
        assert board.returncode == 0 and "system1.x" in board.stdout
    finally:
        up.send_signal(signal.SIGINT)
        _, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    for name in ("stand-in", "grader", "dispatcher"):
        assert f"{name} stopped (exit code 0)" in err
