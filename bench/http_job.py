"""Two HTTP clients compared on the job, not on a microbenchmark: run_bench's saturation job.

Each checkout runs in its own venv (``CHECKOUT/.venv``: CLI, dispatcher and grader alike) and does
one round: 8,854 requests (4,427 items, en+zh) against the stand-in at 256 slots × 200 ms, embedded
and through the dispatcher and grader; the checkouts alternate within every round so that the
machine's load falls on both alike. Besides the efficiency (as in run_bench.py) it records the CPU
seconds of the process that holds the HTTP client (the CLI embedded, the dispatcher for the
services), which depends far less on the machine's load. Medians (min–max) go into ``--out``
between the ``http-job`` markers.

    .venv/bin/python bench/http_job.py --checkout lean=/path/to/lean --checkout aiohttp=. [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ITEMS, SLOTS = 4427, 256
HARNESSES = {"anesbench embedded": 0.95, "anesbench dispatcher+grader": 0.92}  # the issue's goals


def one_round(root: Path) -> None:
    """In ``root``'s venv: the saturation job once embedded, once through the services (JSON lines out)."""
    sys.path.insert(0, str(root))
    import psutil

    from bench.run_bench import CLI, efficiency, reset, standin
    from bench.synthetic import write
    from tests.procs import standin_stats, start_dispatcher, start_grader

    def measured(args: list[str]) -> tuple[float, float]:
        started = time.perf_counter()
        child = subprocess.Popen(args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status):
            raise SystemExit(f"{' '.join(args)} failed")
        return time.perf_counter() - started, usage.ru_utime + usage.ru_stime

    def emit(harness: str, wall: float, cpu: float) -> None:
        print(json.dumps({"harness": harness, "efficiency": efficiency(standin_stats(server.address), SLOTS),
                          "wall": wall, "cpu": cpu}), flush=True)

    with tempfile.TemporaryDirectory(prefix="anesbench-http-job-") as work, contextlib.ExitStack() as started:
        data = str(write(Path(work) / "synthetic.jsonl", ITEMS))
        grader, _ = start_grader()
        started.callback(grader.stop)
        dispatcher, _ = start_dispatcher(grader.address, Path(work) / "dispatcher.duckdb")
        started.callback(dispatcher.stop)
        server = standin("--slots", str(SLOTS), "--latency-ms", "200", "--jitter-ms", "20")
        started.callback(server.stop)
        run = ["run", "--endpoint", server.address, "--model", "bench", "--dataset", data, "--languages", "en,zh",
               "--no-progress"]
        reset(server)
        emit("anesbench embedded", *measured([*CLI, *run, "--db", str(Path(work) / "run.duckdb")]))
        reset(server)
        times = psutil.Process(dispatcher.popen.pid).cpu_times
        before = times().user + times().system
        wall, _ = measured([*CLI, *run, "--dispatcher", dispatcher.address, "--run-id", "sat"])
        emit("anesbench dispatcher+grader", wall, times().user + times().system - before)


def table(runs: dict[tuple[str, str], list[dict[str, float]]], labels: list[str], header: str) -> str:
    sys.path.insert(0, str(ROOT))
    from bench.run_bench import _stat

    def median(harness: str, label: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[(harness, label)])

    lines = [header, "", "| harness | client | efficiency | goal | whole command s | CPU s of the client's process "
             "| CPU µs / request |", "|:---|:---|---:|:---|---:|---:|---:|"]
    for (harness, label), values in runs.items():
        goal = HARNESSES[harness]
        mark = "✓" if median(harness, label, "efficiency") >= goal else "✗"
        lines.append(f"| {harness} | {label} | {_stat([v['efficiency'] for v in values], '.3f')} | ≥ {goal} {mark} "
                     f"| {_stat([v['wall'] for v in values], '.2f')} | {_stat([v['cpu'] for v in values], '.2f')} "
                     f"| {_stat([v['cpu'] for v in values], '.0f', 1e6 / (2 * ITEMS))} |")
    first, second = labels
    lines += ["", f"| harness | efficiency {second} − {first} | CPU {second} ÷ {first} | CPU {second} − {first}, "
              "µs / request |", "|:---|---:|---:|---:|"]
    for harness in HARNESSES:
        cpu = median(harness, second, "cpu"), median(harness, first, "cpu")
        lines.append(f"| {harness} | {median(harness, second, 'efficiency') - median(harness, first, 'efficiency'):+.3f} "
                     f"| {cpu[0] / cpu[1]:.2f} | {(cpu[0] - cpu[1]) * 1e6 / (2 * ITEMS):+.0f} |")
    met = [f"{harness} {median(harness, second, 'efficiency'):.3f} ≥ {goal} "
           f"{'✓' if median(harness, second, 'efficiency') >= goal else '✗'}" for harness, goal in HARNESSES.items()]
    verdict = "replaces" if all(m.endswith("✓") for m in met) else "does not replace"
    lines += ["", f"By the rule (efficiency medians: {'; '.join(met)}), {second} {verdict} {first}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", action="append", metavar="LABEL=PATH",
                        help="a checkout with its own .venv; give two, in the order they alternate")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--round", type=Path, help=argparse.SUPPRESS)  # the child: one round in this checkout
    args = parser.parse_args()
    if args.round:
        one_round(args.round)
        return
    checkouts = {label: Path(path).resolve() for label, path in (c.split("=", 1) for c in args.checkout or ())}
    if len(checkouts) != 2:
        parser.error("give two --checkout LABEL=PATH")
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    loads: list[float] = []
    started = time.monotonic()
    for number in range(args.rounds):
        for label, checkout in checkouts.items():
            before = os.getloadavg()[0]
            out = subprocess.run([str(checkout / ".venv" / "bin" / "python"), __file__, "--round", str(checkout)],
                                 cwd=checkout, check=True, capture_output=True, text=True).stdout
            loads += [before, os.getloadavg()[0]]
            for line in out.splitlines():
                run = json.loads(line)
                runs.setdefault((run.pop("harness"), label), []).append(run)
            print(f"round {number + 1}/{args.rounds}: {label}, load {loads[-2]:.1f} → {loads[-1]:.1f}", flush=True)
    header = (f"_{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, {(time.monotonic() - started) / 60:.1f} "
              f"min; {args.rounds} rounds alternating {', '.join(checkouts)}; {2 * ITEMS} requests, {SLOTS} slots × "
              f"200 ms (± 20 ms); median (min–max); load average {min(loads):.1f}–{max(loads):.1f} (1 min, before "
              "and after each checkout's round)_")
    text = table(dict(sorted(runs.items())), list(checkouts), header)
    print(text)
    if args.out.exists():
        sys.path.insert(0, str(ROOT))
        from bench.run_bench import replace_block

        args.out.write_text(replace_block(args.out.read_text(encoding="utf-8"), "http-job", text), encoding="utf-8")


if __name__ == "__main__":
    main()
