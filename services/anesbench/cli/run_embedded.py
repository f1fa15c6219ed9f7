"""``anesbench run`` without --dispatcher: the engine in this process, a local DuckDB file."""

from __future__ import annotations

import asyncio
import signal
import sys

from anesbench import event_loop
from anesbench.cli.progress import LineProgress, TerminalProgress, summary_line
from anesbench.dataset import Dataset, FieldMap, load_dataset
from anesbench.engine.admission import check_run, open_store, probe_endpoints
from anesbench.engine.config import RunConfig
from anesbench.engine.runner import execute_run
from anesbench.grader import LocalGrader
from anesbench.inference.endpoint import load_api_key
from anesbench.inference.transport import HttpOptions
from anesbench.prompts import PromptTemplate
from anesbench.store import RunRecord, Store
from anesbench.store.async_store import AsyncStore

SIGTERM_EXIT = 128 + signal.SIGTERM


def run_embedded(
    config: RunConfig, dataset_path: str, fields: FieldMap | None, db_path: str, prompt_template: str | None,
    api_key_file: str | None, progress: str, http: HttpOptions | None = None,
) -> RunRecord:
    """``progress``: "bar" (a terminal), "line" (a line every 30 s on stderr) or "off"; ``fields``: the
    dataset's column mapping (None: the AnesBench layout)."""
    # Everything that can be wrong with the input is checked before the database is touched, and so is
    # the endpoint: up, healthy and serving the model (else no run row, no file).
    dataset = load_dataset(dataset_path, config.languages, fields=fields)
    api_key = load_api_key(api_key_file)
    http = http or HttpOptions()
    template = check_run(config, prompt_template, api_key=api_key, http=http, allow_files=True)
    event_loop.run(probe_endpoints(config, api_key=api_key, http=http,
                                   report=lambda line: print(line, file=sys.stderr, flush=True)))
    store = open_store(db_path, abandoned=lambda run_id: print(
        f"warning: run {run_id} was left unfinished by a process that stopped; marked failed "
        "(the same --run-id resumes it)", file=sys.stderr, flush=True))
    observer: TerminalProgress | LineProgress | None = (
        TerminalProgress() if progress == "bar" else LineProgress() if progress == "line" else None
    )
    try:
        run = event_loop.run(_main(config, dataset, template, store, api_key, observer, http))
    except asyncio.CancelledError:  # SIGTERM: the run was stopped and saved (SIGINT arrives as KeyboardInterrupt)
        raise SystemExit(SIGTERM_EXIT) from None
    print(summary_line(run), flush=True)
    return run


async def _main(
    config: RunConfig, dataset: Dataset, template: PromptTemplate, store: Store, api_key: str | None,
    observer: TerminalProgress | LineProgress | None, http: HttpOptions,
) -> RunRecord:
    astore = AsyncStore(store)
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await execute_run(config, dataset, template, astore, LocalGrader(), api_key=api_key,
                                 observer=observer, http=http)
    except asyncio.CancelledError:
        print("interrupted: finished results are saved; run again with the same --run-id to resume",
              file=sys.stderr)
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await astore.close()
