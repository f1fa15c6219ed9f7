"""`make bench` end to end at a tiny size: every job runs, and the tables it writes into the docs are filled."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

JOBS = (
    ("saturation (server reports its slots)", "anesbench embedded"),
    ("saturation (server reports its slots)", "anesbench dispatcher+grader"),
    ("adaptive (server does not report its slots)", "anesbench embedded"),
    ("adaptive (server does not report its slots)", "anesbench dispatcher+grader"),
    ("heavy-tailed: lognormal σ 1.0, cap 25×", "anesbench embedded, no history (file order)"),
    ("heavy-tailed: lognormal σ 1.0, cap 25×", "anesbench embedded, history of model-a (longest first)"),
    ("--samples 4, 10 items", "anesbench embedded, one request with n = 4"),
    ("--samples 4, 10 items", "anesbench embedded, 4 requests (server refuses n)"),
    ("follow-up turn, 20% of replies unanswered", "anesbench embedded, --elicit off"),
    ("follow-up turn, 20% of replies unanswered", "anesbench embedded, --elicit unanswered"),
    ("follow-up turn, 20% of replies unanswered", "anesbench embedded, --elicit all"),
    ("instant server", "anesbench embedded"),
    ("instant server", "anesbench dispatcher+grader"),
)


def test_every_job_runs_and_the_docs_tables_are_filled(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n<!-- bench:begin -->\nold\n<!-- bench:end -->\n\n"
                   "<!-- goals:begin -->\nold\n<!-- goals:end -->\n<!-- report:begin -->\nold\n<!-- report:end -->\n"
                   "kept\n", encoding="utf-8")
    results = tmp_path / "latest.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "run_bench.py"), "--items", "40", "--sample-items", "10",
                    "--slots", "8", "--service-ms", "20", "--jitter-ms", "2", "--repeat", "1", "--skip-peers",
                    "--report-runs", "1,4", "--out", str(doc), "--results", str(results)], cwd=ROOT, check=True,
                   capture_output=True, text=True, timeout=600)
    raw = json.loads(results.read_text(encoding="utf-8"))
    measured = {(job["job"], job["harness"]): job for job in raw["jobs"] if "job" in job}
    assert sorted(measured) == sorted(JOBS)
    for key, job in measured.items():
        assert len(job["walls"]) == 1 and job["walls"][0] > 0, key
        assert job["efficiencies"] or job["rates"], key  # each job has its figure of merit
        assert all(0 < value <= 1.0001 for value in job["efficiencies"]), key
    samples = {harness: job["extra"] for (name, harness), job in measured.items() if name.startswith("--samples")}
    # One request per question with n = 4; four per question when the server refuses n (the fallback).
    assert samples["anesbench embedded, one request with n = 4"]["requests_sent"] == [10]
    # (Requests in flight before the first refusal came back are sent again without n: at most one a question.)
    assert 40 <= samples["anesbench embedded, 4 requests (server refuses n)"]["requests_sent"][0] <= 50
    follow_ups = {harness.rsplit(" ", 1)[1]: job["extra"]["follow_ups"] for (name, harness), job in measured.items()
                  if name.startswith("follow-up turn")}
    assert follow_ups["off"] == [0] and 0 < follow_ups["unanswered"][0] < 80 and follow_ups["all"] == [80]
    assert "| wall --elicit unanswered ÷ off, 20% unanswered |" in doc.read_text(encoding="utf-8")
    memory = next(job["memory"] for job in raw["jobs"] if "memory" in job)
    assert sorted(int(items) for items in memory) == [40, 400]
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and text.endswith("kept\n")
    assert "| instant server | anesbench dispatcher+grader | 40 |" in text
    assert "| heavy-tailed span ÷ lower bound, history of model-a (longest first) | ≤ 1.08 |" in text
    assert re.search(r"\| 4 \| 320 \| [0-9.]+ \| [0-9.]+ \| [0-9]+ \| [0-9.]+ \|", text)  # 4 runs x 40 items x 2
