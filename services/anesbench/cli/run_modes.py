"""``anesbench run``: the engine in this process on a local DuckDB file, or a run submitted to a dispatcher; its
progress (a tqdm bar on a terminal, else a line every 30 s on stderr, for ``kubectl logs -f``).

A run submitted is followed with WatchRun. A local dataset file is validated here and its items travel with
the run; any other value names a dataset in the dispatcher's --datasets-dir. Ctrl-C detaches (the run goes
on). While the dispatcher restarts or drains, the client re-attaches with backoff for up to ten minutes;
any other error (a server bug included) ends the command at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from anesbench import event_loop
from anesbench.cli.dispatcher_client import CALL_TIMEOUT, DispatcherClient, reconnecting
from anesbench.dataset import FieldMap, load_dataset
from anesbench.engine.config import RunConfig, check_run, new_run_id, open_store, probe_endpoints
from anesbench.engine.progress import RunProgress
from anesbench.engine.runner import execute_run
from anesbench.errors import DispatcherUnavailable, InvalidInput
from anesbench.grader import LocalGrader
from anesbench.inference.endpoint import load_api_key
from anesbench.inference.transport import HttpOptions
from anesbench.store import ResultRow, RunRecord
from anesbench.store.async_store import AsyncStore
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.wire import DATASET_NAME
from anesbench.wire.convert import item_to_pb, run_from_pb, spec_to_pb

SIGTERM_EXIT = 128 + signal.SIGTERM
FINAL = {"completed", "failed", "cancelled"}
DEFAULT_INTERVAL = 30.0  # seconds between progress lines


def run_embedded(config: RunConfig, dataset_path: str, fields: FieldMap | None, db_path: str, prompt_template: str | None,
                 api_key_file: str | None, progress: str, http: HttpOptions) -> RunRecord:
    """``progress``: a :class:`Progress` mode or "off"; ``fields``: the dataset's column mapping (None: AnesBench's)."""
    # Everything that can be wrong with the input is checked before the database is touched, and so is
    # the endpoint: up, healthy and serving the model (else no run row, no file).
    dataset = load_dataset(dataset_path, config.languages, fields=fields)
    api_key = load_api_key(api_key_file)
    template = check_run(config, prompt_template, api_key=api_key, http=http, allow_files=True)
    event_loop.run(probe_endpoints(config, api_key=api_key, http=http,
                                   report=lambda line: print(line, file=sys.stderr, flush=True)))
    store = AsyncStore(open_store(db_path, abandoned=lambda run_id: print(
        f"warning: run {run_id} was left unfinished by a process that stopped; marked failed "
        "(the same --run-id resumes it)", file=sys.stderr, flush=True)))

    async def main() -> RunRecord:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await execute_run(config, dataset, template, store, LocalGrader(), api_key=api_key,
                                     observer=Progress(progress) if progress != "off" else None, http=http)
        except asyncio.CancelledError:
            print("interrupted: finished results are saved; run again with the same --run-id to resume",
                  file=sys.stderr)
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            await store.close()

    try:
        return event_loop.run(main())
    except asyncio.CancelledError:  # SIGTERM: the run was stopped and saved (SIGINT arrives as KeyboardInterrupt)
        raise SystemExit(SIGTERM_EXIT) from None


def _request(config: RunConfig, dataset: str, fields: FieldMap | None, prompt_template: str | None,
             run_id: str) -> pb.StartRunRequest:
    spec = spec_to_pb(config, prompt_template)
    if Path(dataset).is_file():
        loaded = load_dataset(Path(dataset), config.languages, fields=fields)
        upload = pb.DatasetUpload(name=loaded.name, sha256=loaded.sha256, items=[item_to_pb(i) for i in loaded.items])
        return pb.StartRunRequest(run_id=run_id, spec=spec, upload=upload)
    if not DATASET_NAME.match(dataset):
        raise InvalidInput(f"no such file: {dataset}", field="dataset")
    if fields is not None:
        raise InvalidInput(f"{dataset!r} is not a local file: a dataset in the dispatcher's datasets directory "
                           "is in the AnesBench layout, a column mapping applies to local files only", field="fields")
    return pb.StartRunRequest(run_id=run_id, spec=spec, dataset_name=dataset)


async def _follow(target: str, request: pb.StartRunRequest, progress: str) -> RunRecord:
    async with DispatcherClient(target) as client:
        # StartRun is idempotent for one run id (the dispatcher joins the run), so a draining or
        # restarting dispatcher is simply asked again. It waits for the endpoint to be ready (the
        # dispatcher's preflight) up to wait_ready_seconds.
        async for attempt in reconnecting():
            with attempt:
                run = run_from_pb(await client.call(client.stub.StartRun, request,
                                                    timeout=CALL_TIMEOUT + request.spec.wait_ready_seconds))
        print(f"run {run.id} on dispatcher {target}: {run.status}", file=sys.stderr)
        shown = Progress(progress)
        shown.begin(run.done, run.total)
        try:
            async for attempt in reconnecting():
                with attempt:
                    await client.ready()
                    async for event in client.stream(client.stub.WatchRun, pb.WatchRunRequest(run_id=run.id)):
                        run = run_from_pb(event.run)
                        shown.update(run.done, run.total, run.correct, run.failed)
                    if run.status not in FINAL:
                        # The stream ended early (the dispatcher is draining or restarting): attach again.
                        raise DispatcherUnavailable(f"run {run.id} is still {run.status}; gave up following it")
            return run
        finally:
            shown.end()


def run_remote(target: str, config: RunConfig, dataset: str, fields: FieldMap | None, prompt_template: str | None,
               progress: str) -> RunRecord:
    run_id = config.run_id or new_run_id(config.model, Path(dataset).name.split(".")[0])
    request = _request(config, dataset, fields, prompt_template, run_id)
    try:
        return event_loop.run(_follow(target, request, progress))
    except KeyboardInterrupt:
        print(f"detached: run {run_id} goes on in the dispatcher; "
              f"anesbench cancel {run_id} --dispatcher {target} stops it", file=sys.stderr)
        raise


def summary_line(run: RunRecord) -> str:
    """One parseable line for scripts: key=value pairs."""
    accuracy = f"{run.correct / run.done:.4f}" if run.done else "nan"
    delta = "" if run.delta is None else f" delta={run.delta:+.4f} delta_p={run.delta_pvalue:.3g}"
    return (f"run_id={run.id} status={run.status} done={run.done} total={run.total} failed={run.failed} "
            f"correct={run.correct} unanswered={run.unanswered} accuracy={accuracy}{delta}")


def progress_interval() -> float:
    """Seconds between progress lines: $ANESBENCH_PROGRESS_INTERVAL (tests set it low), else 30."""
    try:
        value = float(os.environ.get("ANESBENCH_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _accuracy(correct: int, done: int) -> str:
    return f"{correct / done:.3f}" if done else "-"


class Progress:
    """A run's progress, fed by ``update`` or, as a RunObserver, by the engine: a bar (done / rate / ETA, accuracy
    and errors), or a line ``progress: 120/1000 (12.0%) 35.2 items/s ETA 0m25s accuracy 0.812 errors 3`` every
    ``interval`` from a timer, so that one appears even while nothing finishes (the log shows the run is alive)."""

    def __init__(self, mode: str, interval: float | None = None) -> None:
        self.mode = mode
        self.interval = interval or progress_interval()
        self._counts = (0, 0, 0, 0)  # done, total, correct, failed
        self._initial, self._started = 0, time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._bar: tqdm | None = None

    def begin(self, done: int, total: int) -> None:
        self._counts = (done, total, 0, 0)
        self._initial, self._started = done, time.monotonic()
        if self.mode == "bar":
            self._bar = tqdm(total=total, initial=done, unit="item", dynamic_ncols=True, file=sys.stderr,
                             mininterval=0.2, smoothing=0.1)
        elif self.mode == "line":
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def update(self, done: int, total: int, correct: int, failed: int) -> None:
        self._counts = (done, total, correct, failed)
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            self._bar.set_postfix_str(f"acc={_accuracy(correct, done)} errors={failed}", refresh=False)

    def line(self) -> str:
        done, total, correct, failed = self._counts
        elapsed = time.monotonic() - self._started
        rate = (done - self._initial) / elapsed if elapsed > 0 else 0.0
        share = f"{100 * done / total:.1f}%" if total else "-"
        eta = _duration((total - done) / rate) if rate > 0 and total > done else "-"
        return (f"progress: {done}/{total} ({share}) {rate:.1f} items/s ETA {eta} accuracy {_accuracy(correct, done)} "
                f"errors {failed}")

    def _tick(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)
        self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_start(self, run: RunRecord, progress: RunProgress) -> None:
        print(f"run {run.id}: {run.total - progress.done} to send, {progress.done} already done", file=sys.stderr)
        self.begin(progress.done, run.total)

    def on_result(self, row: ResultRow, progress: RunProgress) -> None:
        self.update(progress.done, progress.total, progress.correct, progress.failed)

    def on_finish(self, run: RunRecord, progress: RunProgress) -> None:
        self.update(progress.done, progress.total, progress.correct, progress.failed)
        self.end()
