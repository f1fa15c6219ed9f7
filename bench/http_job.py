"""Two HTTP clients compared on the job, not on a microbenchmark: the saturation jobs of ``run_bench.py``.

Each checkout runs with its own venv (``CHECKOUT/.venv``: CLI, dispatcher and grader alike), one
``run_bench.py --only saturation --repeat 1 --skip-peers`` per round, the checkouts alternating
within every round so that the machine's load falls on both alike. The medians (min–max) of the
rounds go into ``--out`` between the ``http-job`` markers.

    .venv/bin/python bench/http_job.py --checkout lean=/path/to/lean --checkout aiohttp=. [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run_bench import _stat, replace_block  # noqa: E402 (after the sys.path insert)

GOALS = {"anesbench embedded": 0.95, "anesbench dispatcher+grader": 0.92}
SATURATION = "saturation (server reports its slots)"


Run = tuple[str, str, float, float, float]  # job, harness, efficiency, whole command s, peak RSS MB


def one_round(checkout: Path, results: Path) -> tuple[list[Run], tuple[float, float]]:
    """The jobs of one ``run_bench.py`` round in ``checkout``, and the load average before and after."""
    before = os.getloadavg()[0]
    subprocess.run([str(checkout / ".venv" / "bin" / "python"), str(checkout / "bench" / "run_bench.py"),
                    "--only", "saturation", "--repeat", "1", "--skip-peers", "--out", str(results.with_suffix(".md")),
                    "--results", str(results)], cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    jobs = [job for job in json.loads(results.read_text())["jobs"] if "job" in job]
    return ([(j["job"], j["harness"], j["efficiencies"][0], j["walls"][0], j["rss"][0]) for j in jobs],
            (before, os.getloadavg()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", action="append", required=True, metavar="LABEL=PATH",
                        help="a checkout with its own .venv; give two, in the order they alternate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    checkouts = {label: Path(path).resolve() for label, path in (c.split("=", 1) for c in args.checkout)}
    runs: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
    loads: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="anesbench-http-job-") as work:
        for number in range(args.rounds):
            for label, checkout in checkouts.items():
                measured, load = one_round(checkout, Path(work) / f"{label}-{number}.json")
                loads.extend(load)
                for job, harness, *figures in measured:
                    runs.setdefault((job, harness, label), []).append((figures[0], figures[1], figures[2]))
                print(f"round {number + 1}/{args.rounds}: {label} done, load {load[0]:.1f} → {load[1]:.1f}", flush=True)
    lines = [f"_{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
             f"{(time.monotonic() - started) / 60:.1f} min; {args.rounds} rounds alternating "
             f"{', '.join(checkouts)}; median (min–max); load average {min(loads):.1f}–{max(loads):.1f} "
             "(1 min, before and after each round)_", "",
             "| job | harness | client | efficiency | whole command s | peak RSS MB | goal |",
             "|:---|:---|:---|---:|---:|---:|:---|"]
    for (job, harness, label), values in runs.items():
        efficiencies = [v[0] for v in values]
        goal = GOALS.get(harness) if job == SATURATION else None
        mark = "" if goal is None else f"≥ {goal} {'✓' if statistics.median(efficiencies) >= goal else '✗'}"
        lines.append(f"| {job} | {harness} | {label} | {_stat(efficiencies, '.3f')} "
                     f"| {_stat([v[1] for v in values], '.2f')} | {_stat([v[2] for v in values], '.0f')} "
                     f"| {mark} |")
    first, second = checkouts
    lines += ["", f"| job | harness | efficiency {second} − {first} (medians) |", "|:---|:---|---:|"]
    for job, harness, label in runs:
        if label == second and (job, harness, first) in runs:
            def median(who: str, job: str = job, harness: str = harness) -> float:
                return statistics.median(v[0] for v in runs[(job, harness, who)])
            lines.append(f"| {job} | {harness} | {median(second) - median(first):+.3f} |")
    table = "\n".join(lines)
    print(table)
    if args.out.exists():
        args.out.write_text(replace_block(args.out.read_text(encoding="utf-8"), "http-job", table), encoding="utf-8")


if __name__ == "__main__":
    main()
