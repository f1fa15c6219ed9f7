"""The performance benchmark: is the harness ever the bottleneck? (``make bench``)

Runs every scenario as real processes on 127.0.0.1 against the stand-in server and prints (and
writes to docs/performance.md) a table of:

* backend efficiency = (requests × service time ÷ slots) ÷ the span the server saw from its first
  request to its last answer (1.0 = every slot busy all the time);
* items/s against an instant server (the harness's own overhead, grading and DuckDB writes included);
* wall time of the whole command, process start to leaderboard in the database;
* the harness's added latency per request (p50/p99 of round trips to an instant server);
* peak memory (max RSS of the harness process).

Scenarios: the embedded engine, the dispatcher + grader services, and the paper's approach (a
thread pool of 16 or 256 workers with a synchronous client).
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
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.synthetic import write as write_dataset  # noqa: E402 (after the sys.path insert)
from tests.procs import Proc, http_json, standin_stats, start, start_dispatcher, start_grader  # noqa: E402

CLI = [sys.executable, "-m", "anesbench.cli.main"]


@dataclass
class Result:
    scenario: str
    harness: str
    requests: int
    wall_seconds: float
    efficiency: float | None
    items_per_second: float | None
    p50_ms: float | None
    p99_ms: float | None
    peak_rss_mb: float


def timed(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """Run a command; return (wall seconds, peak RSS in MB, result)."""
    started = time.perf_counter()
    popen = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(popen.pid, 0)
    wall = time.perf_counter() - started
    popen.returncode = os.waitstatus_to_exitcode(status)
    out, err = popen.stdout.read(), popen.stderr.read()  # type: ignore[union-attr]
    result = subprocess.CompletedProcess(args, popen.returncode, out, err)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, result


def standin(slots: int, latency_ms: float, jitter_ms: float) -> Proc:
    return start([sys.executable, "-m", "anesbench.standin", "--host", "127.0.0.1", "--port", "0",
                  "--slots", str(slots), "--latency-ms", str(latency_ms), "--jitter-ms", str(jitter_ms),
                  "--unanswerable-rate", "0", "--served-model", "bench"])


def efficiency(stats: dict, requests: int, service_s: float, slots: int) -> float:
    return (requests * service_s / slots) / stats["span_seconds"]


def latencies(db: Path) -> tuple[float, float]:
    with duckdb.connect(str(db), read_only=True) as con:
        values = sorted(v for (v,) in con.execute("SELECT latency_s FROM results").fetchall())
    q = statistics.quantiles(values, n=100)
    return q[49] * 1000, q[98] * 1000


def run_duration(db: Path) -> float:
    with duckdb.connect(str(db), read_only=True) as con:
        started, finished = con.execute("SELECT started_at, finished_at FROM runs").fetchone()
    return (finished - started).total_seconds()


def dispatcher_span(dispatcher: str, run_id: str) -> float:
    """Seconds from the run's start to its end, as the dispatcher recorded them."""
    from datetime import datetime

    listed = subprocess.run([*CLI, "runs", "--dispatcher", dispatcher, "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    run = next(r for r in json.loads(listed) if r["id"] == run_id)
    return (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()


def embedded(endpoint: str, dataset: Path, languages: str, db: Path, *extra: str) -> tuple[float, float]:
    wall, rss, _ = timed([*CLI, "run", "--endpoint", endpoint, "--model", "bench", "--dataset", str(dataset),
                          "--languages", languages, "--db", str(db), *extra])
    return wall, rss


def through_services(dispatcher: str, endpoint: str, dataset: Path, languages: str, run_id: str) -> tuple[float, float]:
    wall, rss, _ = timed([*CLI, "run", "--dispatcher", dispatcher, "--endpoint", endpoint, "--model", "bench",
                          "--dataset", str(dataset), "--languages", languages, "--run-id", run_id])
    return wall, rss


def paper(endpoint: str, dataset: Path, languages: str, workers: int, out: Path) -> tuple[float, float]:
    wall, rss, _ = timed([sys.executable, str(ROOT / "bench" / "paper_style.py"), "--endpoint", endpoint,
                          "--dataset", str(dataset), "--languages", languages, "--workers", str(workers),
                          "--out", str(out)])
    return wall, rss


def reset(proc: Proc) -> None:
    http_json(proc.address.removesuffix("/v1") + "/_stats/reset", {})


def main() -> None:
    parser = argparse.ArgumentParser(description="anesbench performance benchmark")
    parser.add_argument("--items", type=int, default=4427)
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--service-ms", type=float, default=200.0)
    parser.add_argument("--jitter-ms", type=float, default=20.0)
    parser.add_argument("--big-items", type=int, default=100_000, help="dataset size for the memory scenario")
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = parser.parse_args()
    results: list[Result] = []
    work = Path(tempfile.mkdtemp(prefix="anesbench-bench-"))
    data = write_dataset(work / "synthetic.jsonl", args.items)
    requests_two = 2 * args.items
    service_s = args.service_ms / 1000

    grader, _ = start_grader()
    dispatcher, _ = start_dispatcher(grader.address, work / "dispatcher.duckdb")
    try:
        # --- saturation: slots x service time ---------------------------------------------------
        slow = standin(args.slots, args.service_ms, args.jitter_ms)
        try:
            wall, rss = embedded(slow.address, data, "en,zh", work / "sat.duckdb")
            results.append(Result("saturation", "anesbench embedded", requests_two, wall,
                                  efficiency(standin_stats(slow.address), requests_two, service_s, args.slots),
                                  None, None, None, rss))
            reset(slow)
            wall, rss = through_services(dispatcher.address, slow.address, data, "en,zh", "sat")
            results.append(Result("saturation", "anesbench dispatcher+grader", requests_two, wall,
                                   efficiency(standin_stats(slow.address), requests_two, service_s, args.slots),
                                   None, None, None, rss))
            if not args.skip_paper:
                for workers in (16, 256):
                    reset(slow)
                    wall, rss = paper(slow.address, data, "en,zh", workers, work / f"paper{workers}.json")
                    results.append(Result("saturation", f"paper-style thread pool ({workers})", requests_two, wall,
                                          efficiency(standin_stats(slow.address), requests_two, service_s,
                                                     args.slots), None, None, None, rss))
        finally:
            slow.stop()
        # --- overhead: an instant server ---------------------------------------------------------
        fast = standin(0, 0, 0)
        try:
            db = work / "fast.duckdb"
            wall, rss = embedded(fast.address, data, "en", db, "--concurrency", "256")
            p50, p99 = latencies(db)
            results.append(Result("instant server", "anesbench embedded", args.items, wall, None,
                                  args.items / run_duration(db), p50, p99, rss))
            wall, rss = through_services(dispatcher.address, fast.address, data, "en", "fast")
            results.append(Result("instant server", "anesbench dispatcher+grader", args.items, wall, None,
                                  args.items / dispatcher_span(dispatcher.address, "fast"), None, None, rss))
            probe_db = work / "probe.duckdb"
            wall, rss = embedded(fast.address, data, "en", probe_db, "--concurrency", "8")
            p50, p99 = latencies(probe_db)
            results.append(Result("instant server, 8 in flight", "anesbench embedded", args.items, wall, None,
                                  args.items / run_duration(probe_db), p50, p99, rss))
            if not args.skip_paper:
                for workers in (16, 256):
                    wall, rss = paper(fast.address, data, "en", workers, work / f"paperfast{workers}.json")
                    results.append(Result("instant server", f"paper-style thread pool ({workers})", args.items,
                                          wall, None, args.items / wall, None, None, rss))
            if args.big_items:
                big = write_dataset(work / "big.jsonl", args.big_items)
                db = work / "big.duckdb"
                wall, rss = embedded(fast.address, big, "en", db, "--concurrency", "256")
                results.append(Result("instant server, memory", "anesbench embedded", args.big_items, wall, None,
                                      args.big_items / run_duration(db), None, None, rss))
        finally:
            fast.stop()
    finally:
        dispatcher.stop()
        grader.stop()
    report(results, args)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[Result], args: argparse.Namespace) -> None:
    lines = [
        "| scenario | harness | requests | wall s (whole command) | efficiency | items/s | p50 ms | p99 ms | peak RSS MB |",
        "|:---|:---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(f"| {r.scenario} | {r.harness} | {r.requests} | {r.wall_seconds:.2f} | {_fmt(r.efficiency, '.3f')} "
                     f"| {_fmt(r.items_per_second, '.0f')} | {_fmt(r.p50_ms, '.2f')} | {_fmt(r.p99_ms, '.2f')} "
                     f"| {r.peak_rss_mb:.0f} |")
    table = "\n".join(lines)
    print(table)
    settings = (f"{args.items} items; saturation: {args.slots} slots × {args.service_ms:.0f} ms "
                f"(± {args.jitter_ms:.0f} ms jitter), en+zh = {2 * args.items} requests; "
                f"ideal span {2 * args.items * args.service_ms / 1000 / args.slots:.2f} s")
    raw = json.dumps([asdict(r) for r in results], indent=2)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "latest.json").write_text(raw + "\n", encoding="utf-8")
    print(settings)
    if args.out and args.out.exists():
        text = args.out.read_text(encoding="utf-8")
        begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            stamp = time.strftime("%Y-%m-%d %H:%M")
            block = f"{begin}\n_{stamp}, {os.cpu_count()} cores; {settings}_\n\n{table}\n{end}"
            args.out.write_text(head + block + tail, encoding="utf-8")


if __name__ == "__main__":
    main()
