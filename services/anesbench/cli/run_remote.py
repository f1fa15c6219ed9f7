"""``anesbench run --dispatcher``: submit the run, follow it with WatchRun, exit with its final state.

A local dataset file is validated here (read through its column mapping, if any) and its items
travel with the run; any other value names a dataset in the dispatcher's --datasets-dir. Ctrl-C
detaches: the run goes on in the dispatcher. While the dispatcher restarts or drains, the client
re-attaches with backoff (``reconnecting``) for up to ten minutes; any other error (a server bug
included) ends the command at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from anesbench import event_loop
from anesbench.cli.dispatcher_client import DispatcherClient, reconnecting
from anesbench.cli.progress import Progress
from anesbench.dataset import FieldMap, load_dataset
from anesbench.engine.config import RunConfig, new_run_id
from anesbench.errors import DispatcherUnavailable, InvalidInput
from anesbench.store import RunRecord
from anesbench.v1 import dispatcher_pb2 as pb
from anesbench.wire import DATASET_NAME
from anesbench.wire.convert import item_to_pb, run_from_pb, spec_to_pb

FINAL = {"completed", "failed", "cancelled"}


def _request(config: RunConfig, dataset: str, fields: FieldMap | None, prompt_template: str | None,
             run_id: str) -> pb.StartRunRequest:
    request = pb.StartRunRequest(run_id=run_id, spec=spec_to_pb(config, prompt_template))
    path = Path(dataset)
    if path.is_file():
        loaded = load_dataset(path, config.languages, fields=fields)
        request.upload.name = loaded.name
        request.upload.sha256 = loaded.sha256
        request.upload.items.extend(item_to_pb(item) for item in loaded.items)
    elif DATASET_NAME.match(dataset) and "/" not in dataset:
        if fields is not None:
            raise InvalidInput(f"{dataset!r} is not a local file: a dataset in the dispatcher's datasets directory "
                               "is in the AnesBench layout, a column mapping applies to local files only",
                               field="fields")
        request.dataset_name = dataset
    else:
        raise InvalidInput(f"no such file: {dataset}", field="dataset")
    return request


async def _follow(target: str, request: pb.StartRunRequest, progress: str) -> RunRecord:
    async with DispatcherClient(target) as client:
        # StartRun is idempotent for one run id (the dispatcher joins the run), so a draining or
        # restarting dispatcher is simply asked again. It waits for the endpoint to be ready (the
        # dispatcher's preflight) up to wait_ready_seconds.
        async for attempt in reconnecting():
            with attempt:
                run = run_from_pb(await client.call(client.stub.StartRun, request,
                                                    timeout=client.timeout + request.spec.wait_ready_seconds))
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
        run = event_loop.run(_follow(target, request, progress))
    except KeyboardInterrupt:
        print(f"detached: run {run_id} goes on in the dispatcher; "
              f"anesbench cancel {run_id} --dispatcher {target} stops it", file=sys.stderr)
        raise
    return run
