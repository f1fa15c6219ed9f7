"""The performance benchmark: how close does a run get to the physical limit? (``make bench``)

Every job runs as real processes on 127.0.0.1 against the stand-in server, ``--repeat`` times (3 by
default); the table shows the median and the min–max of the runs. Figures are ratios wherever the
machine's load could distort seconds:

* efficiency = lower bound ÷ the span the stand-in saw from its first request to its last answer,
  where the lower bound is max(slot-seconds of work ÷ slots, the longest single request): 1.0 means no
  schedule could have finished sooner. (For fixed 200 ms requests it is the share of slot time used.)
* wall ÷ ideal: the whole command, process start to leaderboard in the database, against
  requests × mean service time ÷ slots;
* items/s against an instant server (the harness's own overhead: grading and DuckDB writes included);
* peak RSS of the harness process (of the CLI client for the services; lm-eval's own process).

Jobs: saturation (256 slots × 200 ms, en+zh), the same without the server reporting its slots
(adaptive limiter), heavy-tailed replies (lognormal) with and without history, ``--samples 4`` with
and without ``n``, an instant server, memory at 4,427 and 44,270 items; the paper's thread pool and
lm-evaluation-harness as peers against the same stand-in; the follow-up turn (``--elicit off``,
``unanswered``, ``all``) at a fixed share of replies without an answer, as wall-time ratios to ``off``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import lm_eval_peer  # noqa: E402 (after the sys.path insert)
from bench.synthetic import write as write_dataset  # noqa: E402
from tests.procs import Proc, http_json, standin_stats, start, start_dispatcher, start_grader  # noqa: E402

CLI = [sys.executable, "-m", "anesbench.cli.main"]


@dataclass
class Job:
    """One job's repeated measurements."""

    job: str
    harness: str
    requests: int
    ideal_s: float | None = None  # requests x mean service ÷ slots, for wall ÷ ideal
    walls: list[float] = field(default_factory=list)
    efficiencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # items/s
    rss: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)  # requests sent, prompt tokens, ...
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, value: float) -> None:
        self.extra.setdefault(key, []).append(value)


def run_measured(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run a command; return (wall seconds, peak RSS in MB of exactly this process (``wait4``), stdout)."""
    started = time.perf_counter()
    popen = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []

    def drain(stream: Any, into: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            into.append(chunk)

    readers = [threading.Thread(target=drain, args=(popen.stdout, out_chunks)),
               threading.Thread(target=drain, args=(popen.stderr, err_chunks))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(popen.pid, 0)
    wall = time.perf_counter() - started
    for reader in readers:
        reader.join()
    popen.returncode = os.waitstatus_to_exitcode(status)
    if popen.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({popen.returncode}): {b''.join(err_chunks).decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, b"".join(out_chunks).decode()


def standin(*options: str) -> Proc:
    return start([sys.executable, "-m", "anesbench_testkit.standin", "--host", "127.0.0.1", "--port", "0",
                  "--unanswerable-rate", "0", "--served-model", "bench", *options])


def reset(proc: Proc) -> None:
    http_json(proc.address.removesuffix("/v1") + "/_stats/reset", {})


def efficiency(stats: dict[str, Any], slots: int) -> float:
    """Lower bound ÷ span: max(work ÷ slots, longest request) against first request to last answer."""
    bound = max(stats["slot_seconds"] / slots, stats["longest_seconds"])
    return bound / stats["span_seconds"]


def run_span(db: Path, run_id: str | None = None) -> float:
    with duckdb.connect(str(db), read_only=True) as con:
        query = "SELECT started_at, finished_at FROM runs" + (" WHERE id = ?" if run_id else "")
        started, finished = con.execute(query, [run_id] if run_id else []).fetchone()
    return (finished - started).total_seconds()


def run_orderings(db: Path) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {model: ordering for model, ordering in con.execute("SELECT model, ordering FROM runs").fetchall()}


def dispatcher_span(dispatcher: str, run_id: str) -> float:
    listed = subprocess.run([*CLI, "runs", "--dispatcher", dispatcher, "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    run = next(r for r in json.loads(listed) if r["id"] == run_id)
    return (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()


def embedded(endpoint: str, dataset: Path, languages: str, db: Path, *extra: str,
             model: str = "bench") -> tuple[float, float]:
    wall, rss, _ = run_measured([*CLI, "run", "--endpoint", endpoint, "--model", model, "--dataset", str(dataset),
                                 "--languages", languages, "--db", str(db), "--no-progress", *extra])
    return wall, rss


def through_services(dispatcher: str, endpoint: str, dataset: Path, languages: str, run_id: str) -> tuple[float, float]:
    wall, rss, _ = run_measured([*CLI, "run", "--dispatcher", dispatcher, "--endpoint", endpoint, "--model", "bench",
                                 "--dataset", str(dataset), "--languages", languages, "--run-id", run_id,
                                 "--no-progress"])
    return wall, rss


def paper(endpoint: str, dataset: Path, languages: str, workers: int, out: Path) -> tuple[float, float]:
    wall, rss, _ = run_measured([sys.executable, str(ROOT / "bench" / "paper_style.py"), "--endpoint", endpoint,
                                 "--dataset", str(dataset), "--languages", languages, "--workers", str(workers),
                                 "--out", str(out)])
    return wall, rss


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="anesbench-bench-"))
        self.jobs: dict[tuple[str, str], Job] = {}
        self.memory: dict[int, list[float]] = {}
        self.reports: dict[int, tuple[int, list[float], list[float]]] = {}  # runs -> (results, walls, RSS)
        self.data = write_dataset(self.work / "synthetic.jsonl", args.items)
        self.requests = 2 * args.items
        self.service_s = args.service_ms / 1000
        self.ideal = self.requests * self.service_s / args.slots
        self._runs = 0
        self.lm_eval: Path | None = None
        self.lm_eval_problem: str | None = None

    def job(self, name: str, harness: str, requests: int, ideal: float | None = None) -> Job:
        return self.jobs.setdefault((name, harness), Job(name, harness, requests, ideal))

    def db(self) -> Path:
        self._runs += 1
        return self.work / f"run{self._runs}.duckdb"

    def saturating(self, *options: str) -> list[str]:
        a = self.args
        return ["--slots", str(a.slots), "--latency-ms", str(a.service_ms), "--jitter-ms", str(a.jitter_ms), *options]

    # --- jobs -----------------------------------------------------------------------------------
    def saturation(self, dispatcher: Proc) -> None:
        a = self.args
        for label, options in (("saturation (server reports its slots)", ()),
                               ("adaptive (server does not report its slots)", ("--hide-slots",))):
            server = standin(*self.saturating(*options))
            try:
                for repeat in range(a.repeat):
                    reset(server)
                    wall, rss = embedded(server.address, self.data, "en,zh", self.db())
                    job = self.job(label, "anesbench embedded", self.requests, self.ideal)
                    job.walls.append(wall)
                    job.rss.append(rss)
                    job.efficiencies.append(efficiency(standin_stats(server.address), a.slots))
                    reset(server)
                    tag = "sat" if not options else "adaptive"
                    wall, rss = through_services(dispatcher.address, server.address, self.data, "en,zh",
                                                 f"{tag}-{repeat}")
                    job = self.job(label, "anesbench dispatcher+grader", self.requests, self.ideal)
                    job.walls.append(wall)
                    job.rss.append(rss)
                    job.efficiencies.append(efficiency(standin_stats(server.address), a.slots))
                    if not options and not a.skip_peers:
                        reset(server)
                        wall, rss = paper(server.address, self.data, "en,zh", 256, self.work / "paper.json")
                        job = self.job(label, "paper-style thread pool (256)", self.requests, self.ideal)
                        job.walls.append(wall)
                        job.rss.append(rss)
                        job.efficiencies.append(efficiency(standin_stats(server.address), a.slots))
                        self.peer_lm_eval(server, label, self.data, "en,zh", self.requests, self.ideal)
            finally:
                server.stop()

    def heavy_tailed(self) -> None:
        a = self.args
        for repeat in range(a.repeat):
            server = standin("--slots", str(a.slots), "--latency-ms", str(a.service_ms), "--latency-dist", "lognormal",
                             "--sigma", "1.0", "--model-sigma", "0.3", "--latency-cap", "25", "--seed", str(repeat),
                             "--served-model", "model-a,model-b")
            try:
                db = self.db()
                for model, harness in (("model-a", "no history (file order)"),
                                       ("model-b", "history of model-a (longest first)")):
                    reset(server)
                    wall, rss = embedded(server.address, self.data, "en,zh", db, model=model)
                    job = self.job("heavy-tailed: lognormal σ 1.0, cap 25×", f"anesbench embedded, {harness}",
                                   self.requests, None)
                    job.walls.append(wall)
                    job.rss.append(rss)
                    stats = standin_stats(server.address)
                    job.efficiencies.append(efficiency(stats, a.slots))
                    job.add("bound_s", max(stats["slot_seconds"] / a.slots, stats["longest_seconds"]))
                orderings = run_orderings(db)
                if orderings.get("model-a") != "file" or not str(orderings.get("model-b")).startswith("history:"):
                    raise SystemExit(f"unexpected orderings in the heavy-tailed job: {orderings}")
            finally:
                server.stop()

    def samples(self) -> None:
        a = self.args
        data = write_dataset(self.work / "samples.jsonl", a.sample_items)
        choices = a.sample_items * 4
        for label, options in (("one request with n = 4", ()), ("4 requests (server refuses n)", ("--refuse-n",))):
            server = standin(*self.saturating(*options))
            try:
                for _ in range(a.repeat):
                    reset(server)
                    wall, rss = embedded(server.address, data, "en", self.db(), "--samples", "4",
                                         "--temperature", "0.7")
                    stats = standin_stats(server.address)
                    job = self.job(f"--samples 4, {a.sample_items} items", f"anesbench embedded, {label}", choices,
                                   choices * self.service_s / a.slots)
                    job.walls.append(wall)
                    job.rss.append(rss)
                    job.efficiencies.append(efficiency(stats, a.slots))
                    job.add("requests_sent", stats["requests"])
                    job.add("prompt_tokens", stats["prompt_tokens"])
                    job.add("completion_tokens", stats["completion_tokens"])
            finally:
                server.stop()

    def elicitation(self) -> None:
        """The cost of the follow-up turn: the same run with --elicit off, unanswered and all."""
        a = self.args
        server = standin(*self.saturating("--unanswerable-rate", str(a.unanswered_share)))
        try:
            for _ in range(a.repeat):
                for mode in ("off", "unanswered", "all"):
                    reset(server)
                    wall, rss = embedded(server.address, self.data, "en,zh", self.db(), "--elicit", mode)
                    job = self.job(f"follow-up turn, {a.unanswered_share:.0%} of replies unanswered",
                                   f"anesbench embedded, --elicit {mode}", self.requests, self.ideal)
                    job.walls.append(wall)
                    job.rss.append(rss)
                    stats = standin_stats(server.address)
                    job.efficiencies.append(efficiency(stats, a.slots))
                    job.add("follow_ups", stats["follow_ups"])
        finally:
            server.stop()

    def instant(self, dispatcher: Proc) -> None:
        a = self.args
        server = standin()
        try:
            big = write_dataset(self.work / "big.jsonl", a.items * 10)
            for repeat in range(a.repeat):
                db = self.db()
                wall, rss = embedded(server.address, self.data, "en", db, "--concurrency", "256")
                job = self.job("instant server", "anesbench embedded", a.items)
                job.walls.append(wall)
                job.rss.append(rss)
                job.rates.append(a.items / run_span(db))
                self.memory.setdefault(a.items, []).append(rss)
                wall, rss = through_services(dispatcher.address, server.address, self.data, "en", f"fast-{repeat}")
                job = self.job("instant server", "anesbench dispatcher+grader", a.items)
                job.walls.append(wall)
                job.rss.append(rss)
                job.rates.append(a.items / dispatcher_span(dispatcher.address, f"fast-{repeat}"))
                if not a.skip_peers:
                    for workers in (16, 256):
                        wall, rss = paper(server.address, self.data, "en", workers, self.work / "paperfast.json")
                        job = self.job("instant server", f"paper-style thread pool ({workers})", a.items)
                        job.walls.append(wall)
                        job.rss.append(rss)
                        job.rates.append(a.items / wall)
                    self.peer_lm_eval(server, "instant server", self.data, "en", a.items, None)
                db = self.db()
                wall, rss = embedded(server.address, big, "en", db, "--concurrency", "256")
                self.memory.setdefault(a.items * 10, []).append(rss)
        finally:
            server.stop()

    def report_growth(self) -> None:
        """A default report of stores of 1 to 2,000 runs (store built, reported, deleted, one size at a time)."""
        for runs in (int(value) for value in self.args.report_runs.split(",")):
            db = self.work / f"many-{runs}.duckdb"
            walls: list[float] = []
            rss: list[float] = []
            # In a process of its own: a report forked from this one after a build would count its memory.
            _, _, built = run_measured([sys.executable, str(ROOT / "bench" / "many_runs.py"), "--runs", str(runs),
                                        "--items", str(self.args.items), "--out", str(db)])
            self.reports[runs] = (int(built), walls, rss)
            for _ in range(self.args.repeat):
                wall, peak, _ = run_measured([*CLI, "report", "--db", str(db), "--out", str(self.work / "r.html"),
                                              "--force"])
                walls.append(wall)
                rss.append(peak)
            db.unlink()

    def peer_lm_eval(self, server: Proc, label: str, data: Path, languages: str, requests: int,
                     ideal: float | None) -> None:
        if self.lm_eval_problem is not None:
            return
        try:
            lm_eval_peer.install()
        except (OSError, subprocess.CalledProcessError) as exc:
            self.lm_eval_problem = f"lm-eval could not be installed: {exc}"
            return
        folder = lm_eval_peer.write_task(data, tuple(languages.split(",")), self.work / f"lm-eval-{languages}")
        reset(server)
        wall, rss, _ = run_measured(lm_eval_peer.command(server.address, folder),
                                    env=lm_eval_peer.environment(self.work / "hf"))
        job = self.job(label, "lm-evaluation-harness (local-chat-completions, 256 concurrent)", requests, ideal)
        job.walls.append(wall)
        job.rss.append(rss)
        stats = standin_stats(server.address)
        if ideal is not None:
            job.efficiencies.append(efficiency(stats, self.args.slots))
        else:
            job.rates.append(requests / wall)


def _stat(values: list[float], spec: str, scale: float = 1.0) -> str:
    if not values:
        return "-"
    scaled = [v * scale for v in values]
    median = format(statistics.median(scaled), spec)
    if len(scaled) == 1:
        return median
    return f"{median} ({format(min(scaled), spec)}–{format(max(scaled), spec)})"


def tables(bench: Bench) -> tuple[str, list[dict[str, Any]]]:
    lines = [
        "| job | harness | requests | whole command s | wall ÷ ideal | efficiency | items/s | peak RSS MB |",
        "|:---|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for job in bench.jobs.values():
        ratio = [w / job.ideal_s for w in job.walls] if job.ideal_s else []
        lines.append(f"| {job.job} | {job.harness} | {job.requests} | {_stat(job.walls, '.2f')} | {_stat(ratio, '.2f')} "
                     f"| {_stat(job.efficiencies, '.3f')} | {_stat(job.rates, '.0f')} | {_stat(job.rss, '.0f')} |")
    samples = [job for job in bench.jobs.values() if "requests_sent" in job.extra]
    if samples:
        lines += ["", "| `--samples 4` | requests sent | prompt tokens (prefill) | completion tokens | whole command s |",
                  "|:---|---:|---:|---:|---:|"]
        for job in samples:
            lines.append(f"| {job.harness} | {_stat(job.extra['requests_sent'], '.0f')} "
                         f"| {_stat(job.extra['prompt_tokens'], '.0f')} | {_stat(job.extra['completion_tokens'], '.0f')} "
                         f"| {_stat(job.walls, '.2f')} |")
    follow_ups = {job.harness.rsplit(" ", 1)[1]: job for job in bench.jobs.values() if "follow_ups" in job.extra}
    if "off" in follow_ups:
        base = statistics.median(follow_ups["off"].walls)
        lines += ["", "| `--elicit` | follow-up requests | whole command s | ÷ `off` |", "|:---|---:|---:|---:|"]
        for mode, job in follow_ups.items():
            lines.append(f"| {mode} | {_stat(job.extra['follow_ups'], '.0f')} | {_stat(job.walls, '.2f')} "
                         f"| {_stat([w / base for w in job.walls], '.3f')} |")
    if bench.memory:
        small = min(bench.memory)
        lines += ["", f"| JSON Lines items, instant server | peak RSS MB | ÷ peak at {small:,} items |", "|---:|---:|---:|"]
        for items, values in sorted(bench.memory.items()):
            ratios = [v / statistics.median(bench.memory[small]) for v in values]
            lines.append(f"| {items} | {_stat(values, '.0f')} | {_stat(ratios, '.3f')} |")
    raw = [asdict(job) for job in bench.jobs.values()] + [{"memory": bench.memory, "reports": bench.reports}]
    return "\n".join(lines), raw


def report_table(bench: Bench) -> str:
    """Report seconds and peak RSS per store size, and their ratio to the smallest store's medians."""
    if not bench.reports:
        return ""
    _, walls, rss = bench.reports[min(bench.reports)]
    lines = ["| runs in the store | results | `report` s | ÷ 1 run | peak RSS MB | ÷ 1 run |", "|---:|---:|---:|---:|---:|---:|"]
    for runs, (results, times, peaks) in sorted(bench.reports.items()):
        lines.append(f"| {runs:,} | {results:,} | {_stat(times, '.2f')} | "
                     f"{_stat([t / statistics.median(walls) for t in times], '.2f')} | {_stat(peaks, '.0f')} | "
                     f"{_stat([p / statistics.median(rss) for p in peaks], '.2f')} |")
    if 200 in bench.reports and min(bench.reports) == 1:
        _, walls_200, rss_200 = bench.reports[200]
        time_ratio = statistics.median(walls_200) / statistics.median(walls)
        rss_ratio = statistics.median(rss_200) / statistics.median(rss)
        lines.append(f"\nGoal, 200 runs ÷ 1 run (medians): seconds {time_ratio:.2f} (≤ 3 {'✓' if time_ratio <= 3 else '✗'}), "
                     f"peak RSS {rss_ratio:.2f} (≤ 1.5 {'✓' if rss_ratio <= 1.5 else '✗'}).")
    return "\n".join(lines)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def goals(bench: Bench) -> str:
    """The performance goals next to the medians measured in this run."""
    jobs = bench.jobs

    def eff(name: str, harness: str) -> float | None:
        job = jobs.get((name, harness))
        return _median(job.efficiencies) if job else None

    rows: list[tuple[str, str, float | None, Callable[[float], bool] | None]] = []  # None: no goal, shown for context
    sat, ada = "saturation (server reports its slots)", "adaptive (server does not report its slots)"
    heavy = "heavy-tailed: lognormal σ 1.0, cap 25×"
    rows.append(("efficiency embedded, server reports slots", "≥ 0.95", eff(sat, "anesbench embedded"),
                 lambda v: v >= 0.95))
    rows.append(("efficiency dispatcher + grader", "≥ 0.92", eff(sat, "anesbench dispatcher+grader"),
                 lambda v: v >= 0.92))
    rows.append(("efficiency, no --concurrency, server hides its slots (adaptive)", "≥ 0.9",
                 eff(ada, "anesbench embedded"), lambda v: v >= 0.9))
    rows.append(("the same through the dispatcher", "≥ 0.9", eff(ada, "anesbench dispatcher+grader"),
                 lambda v: v >= 0.9))
    for harness, goal, check in (("anesbench embedded, no history (file order)", "(before: 1.56–1.62)", None),
                                 ("anesbench embedded, history of model-a (longest first)", "≤ 1.08", 1.08)):
        value = eff(heavy, harness)
        rows.append((f"heavy-tailed span ÷ lower bound, {harness.split(', ', 1)[1]}", goal,
                     None if value is None else 1 / value,
                     (lambda v, c=check: v <= c) if check else None))
    n_job = next((j for j in jobs.values() if "n = 4" in j.harness), None)
    one_job = next((j for j in jobs.values() if "refuses n" in j.harness), None)
    if n_job and one_job:
        requests = _median(n_job.extra["requests_sent"]) / n_job.requests  # type: ignore[operator]
        tokens = _median(n_job.extra["prompt_tokens"]) / _median(one_job.extra["prompt_tokens"])  # type: ignore[operator]
        rows.append(("`--samples 4` with n: requests sent ÷ samples", "< 1 (0.25)", requests, lambda v: v < 1))
        rows.append(("`--samples 4` with n: prompt tokens ÷ one request per sample", "< 1 (0.25)", tokens,
                     lambda v: v < 1))
    off = next((j for j in jobs.values() if j.harness.endswith("--elicit off")), None)
    asked = next((j for j in jobs.values() if j.harness.endswith("--elicit unanswered")), None)
    if off and asked:
        share = bench.args.unanswered_share
        rows.append((f"wall --elicit unanswered ÷ off, {share:.0%} unanswered", f"≤ {1 + share:.2f} (1 + share)",
                     statistics.median(asked.walls) / statistics.median(off.walls), lambda v: v <= 1 + share))
    if len(bench.memory) >= 2:
        small, large = min(bench.memory), max(bench.memory)
        ratio = statistics.median(bench.memory[large]) / statistics.median(bench.memory[small])
        rows.append((f"peak RSS {large:,} ÷ {small:,} JSON Lines items", "≤ 1.2", ratio, lambda v: v <= 1.2))
    lines = ["| goal | target | measured median | |", "|:---|---:|---:|:---:|"]
    for text, target, value, check in rows:
        shown = "-" if value is None else f"{value:.3f}"
        mark = "" if value is None or check is None else ("✓" if check(value) else "✗")
        lines.append(f"| {text} | {target} | {shown} | {mark} |")
    if bench.lm_eval_problem:
        lines.append(f"\nlm-evaluation-harness: {bench.lm_eval_problem}")
    return "\n".join(lines)


def replace_block(text: str, name: str, block: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        return text
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description="anesbench performance benchmark")
    parser.add_argument("--items", type=int, default=4427)
    parser.add_argument("--sample-items", type=int, default=1000, help="questions for the --samples 4 job")
    parser.add_argument("--slots", type=int, default=256)
    parser.add_argument("--service-ms", type=float, default=200.0)
    parser.add_argument("--jitter-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-peers", action="store_true", help="leave out the paper-style pool and lm-eval")
    parser.add_argument("--unanswered-share", type=float, default=0.2,
                        help="share of replies without an answer in the follow-up job")
    parser.add_argument("--only", default="saturation,heavy,samples,elicit,instant,report",
                        help="comma-separated jobs: saturation, heavy, samples, elicit, instant, report")
    parser.add_argument("--report-runs", default="1,20,200,2000",
                        help="store sizes (runs) for the report job; the first is what the others are set against")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--load-note", default="", help="said under the table, e.g. that the machine was loaded")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "latest.json",
                        help="where the raw measurements go (JSON)")
    args = parser.parse_args()
    bench = Bench(args)
    only = set(args.only.split(","))
    started = time.monotonic()
    load_before = os.getloadavg()
    grader, _ = start_grader()
    dispatcher, _ = start_dispatcher(grader.address, bench.work / "dispatcher.duckdb")
    try:
        if "saturation" in only:
            bench.saturation(dispatcher)
        if "heavy" in only:
            bench.heavy_tailed()
        if "samples" in only:
            bench.samples()
        if "elicit" in only:
            bench.elicitation()
        if "instant" in only:
            bench.instant(dispatcher)
        if "report" in only:
            bench.report_growth()
    finally:
        dispatcher.stop()
        grader.stop()
        shutil.rmtree(bench.work, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    table, raw = tables(bench)
    summary = goals(bench)
    load_after = os.getloadavg()
    settings = (f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, {minutes:.1f} min; "
                f"median (min–max) of {args.repeat} runs; {args.items} items, en+zh = {bench.requests} requests; "
                f"stand-in: {args.slots} slots × {args.service_ms:.0f} ms (± {args.jitter_ms:.0f} ms; lognormal jobs: "
                f"mean {args.service_ms:.0f} ms); ideal span {bench.ideal:.2f} s; load average "
                f"{load_before[0]:.1f} before, {load_after[0]:.1f} after")
    growth = report_table(bench)
    print(table)
    print()
    print(growth)
    print()
    print(summary)
    print(settings)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({"settings": settings, "jobs": raw}, indent=2) + "\n", encoding="utf-8")
    if args.out and args.out.exists():
        note = f"\n\n{args.load_note}" if args.load_note else ""
        text = args.out.read_text(encoding="utf-8")
        if bench.jobs:  # a run of the report job alone leaves the other jobs' figures as they are
            text = replace_block(text, "bench", f"_{settings}_{note}\n\n{table}")
            text = replace_block(text, "goals", summary)
        if growth:
            text = replace_block(text, "report", f"_{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores; "
                                 f"median (min–max) of {args.repeat} reports per size; {args.items} items × en+zh per "
                                 f"run, short synthetic replies; load average {load_before[0]:.1f} before, "
                                 f"{load_after[0]:.1f} after_{note}\n\n{growth}")
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
