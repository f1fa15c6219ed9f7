"""`anesbench report` opened in a real headless Chromium (Debian's package): loads with no console
error, fetches nothing, and its screenshot shows the plots (pixels of the plot colours are counted)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import SAMPLE
from tests.missing import missing
from tests.procs import run_cli, start_standin

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
# matplotlib's first colours (tab:blue, tab:orange, tab:green): the accuracy bars and the outcome bars
PLOT_COLOURS = {"blue": (31, 119, 180), "orange": (255, 127, 14), "green": (44, 160, 44)}


def _chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        missing("chromium not found: run `bash scripts/install-tools.sh` (Debian package chromium)")
    return found


def _browse(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("report") / "a.duckdb"
    standin = start_standin("--answer-key", str(SAMPLE), "--latency-ms", "3", "--jitter-ms", "2",
                            "--served-model", "model-one,model-two")
    try:
        # m3: several samples per question, so the report has a reliability diagram too
        for run_id, model, samples in (("m1", "model-one", "1"), ("m2", "model-two", "1"), ("m3", "model-two", "3")):
            result = run_cli("run", "--endpoint", standin.address, "--model", model, "--dataset", str(SAMPLE),
                             "--languages", "en,zh", "--db", str(path), "--run-id", run_id, "--no-progress",
                             "--concurrency", "8", "--samples", samples, timeout=180)
            assert result.returncode == 0, result.stderr
    finally:
        standin.stop()
    yield path


@pytest.fixture(scope="module")
def report(db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = run_cli("report", "--db", str(db), "--run", "m1", "--run", "m2", "--run", "m3", "--dataset", str(SAMPLE),
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_the_page_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert set(re.findall(r"url\((.)", html)) <= {"#"}  # only clip paths inside the same SVG
    references = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', html)
    assert all(ref.startswith("#") for ref in references), [r for r in references if not r.startswith("#")][:5]
    assert html.count("<svg") == 4


def test_the_page_shows_every_section(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    for title in ("validity record", "Leaderboard (paper layout)", "Wilson intervals", "Paired comparison",
                  "English ↔ Chinese agreement", "Calibration (reliability diagram)", "extraction methods",
                  "Tokens and latency", "answered wrongly"):
        assert title in html, title
    assert re.search(r'<td class="w">[0-9a-f]{64}</td>', html)  # dataset and template sha256 are shown in full
    assert "<details><summary>reply</summary><pre>" in html  # the reply, folded
    assert "A = m1 vs B = m2" in html
    assert "<h3>m3 (model-two)</h3>" in html.split("Calibration (reliability diagram)")[1].split("</section>")[0]


def test_console_scan_catches_errors_in_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); missing();</script></body></html>')
    result = _browse(page, tmp_path / "profile", "--dump-dom")
    assert any('"boom"' in line for line in _console(result.stderr)), result.stderr[-2000:]


def test_chromium_loads_the_report_without_console_errors(report: Path, tmp_path: Path) -> None:
    result = _browse(report, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console(result.stderr) == []
    assert result.stdout.count("<svg") == 4 and "Paired comparison" in result.stdout


def test_the_screenshot_shows_the_plots(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _browse(report, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2600",
                     "--hide-scrollbars")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    counts = {name: int((np.abs(pixels - np.array(colour)).max(axis=2) <= 6).sum())
              for name, colour in PLOT_COLOURS.items()}
    # the bars cover thousands of pixels each; a page without plots has none of these colours
    assert all(count > 2000 for count in counts.values()), counts


def test_report_with_no_completed_run_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    # A server that is up (the preflight passes) but refuses every request: a failed run, no answer.
    refusing = start_standin("--fail-first", "100", "--fail-kind", "429")
    try:
        down = run_cli("run", "--endpoint", refusing.address, "--model", "standin", "--dataset", str(SAMPLE),
                       "--db", str(db), "--run-id", "down", "--max-attempts", "1", "--no-progress")
    finally:
        refusing.stop()
    assert down.returncode == 1, down.stderr
    out = tmp_path / "r.html"
    for args in ((), ("--run", "down")):
        result = run_cli("report", "--db", str(db), *args, "--out", str(out))
        assert result.returncode == 2 and "no completed runs" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_report_refuses_an_existing_file_and_unknown_runs(report: Path, db: Path, tmp_path: Path) -> None:
    before = report.read_bytes()
    result = run_cli("report", "--db", str(db), "--out", str(report))
    assert result.returncode == 2 and "--force" in result.stderr
    assert report.read_bytes() == before
    missing = tmp_path / "x.html"
    result = run_cli("report", "--db", str(db), "--run", "nope", "--out", str(missing))
    assert result.returncode == 2 and "'nope'" in result.stderr and not missing.exists()
