"""A completed run's stored replies graded again by the current extractor, as a new run: nothing is sent.

The new run is the old one's record with the current harness and extractor versions, so it starts (or
continues) the series of that extractor version; each result keeps its reply and names the run it came
from (``reused_from``). A letter the follow-up turn gave stays where the run would have used it: always
under ``--elicit all``, else where the rules, as they read now, still find no answer.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

from anesbench import __version__
from anesbench.dataset import Dataset, Item
from anesbench.engine.config import new_run_id
from anesbench.engine.elicitation import ELICITED
from anesbench.engine.regression import with_delta
from anesbench.engine.runner import grade_reply
from anesbench.errors import ConfigConflict, InvalidInput
from anesbench.grader import Grader
from anesbench.grading import EXTRACTOR_VERSION
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.store.records import ResultRow, RunRecord

BATCH = 512  # replies graded concurrently and written together


async def regrade_run(store: AsyncStore, grader: Grader, dataset: Dataset, run_id: str,
                      new_id: str | None = None) -> RunRecord:
    """Regrade ``run_id`` (completed, results kept) on its ``dataset`` into the new run ``new_id``."""
    source = await store.call(Store.get_run, run_id)
    if source.status != "completed":
        raise InvalidInput(f"run {run_id!r} is {source.status}: only a completed run can be regraded", field="run_id")
    if source.scoring == "logprobs":
        raise InvalidInput(f"run {run_id!r} was scored by log-probabilities: it has no replies for the rules to read",
                           field="run_id")
    await store.call(Store.require_results, run_id)
    if dataset.sha256 != source.dataset_sha256:
        raise InvalidInput(f"{dataset.name} (sha256 {dataset.sha256[:12]}) is not the dataset of run {run_id!r} "
                           f"({source.dataset_name}, sha256 {source.dataset_sha256[:12]})", field="dataset")
    new_id = new_id or new_run_id(source.model, source.dataset_name)
    if await store.call(Store.find_run, new_id) is not None:
        raise ConfigConflict(f"a run {new_id!r} exists; use another id", field="new_run_id")
    await store.call(Store.begin_run, replace(source, id=new_id, harness_version=__version__,
                                               extractor_version=EXTRACTOR_VERSION))
    items = {item.id: item for item in dataset.items}
    try:
        rows = await store.call(Store.results, run_id)
        for start in range(0, len(rows), BATCH):
            batch = [replace(row, run_id=new_id, reused_from=row.reused_from or run_id, created_at=datetime.now())
                     for row in rows[start:start + BATCH]]
            await asyncio.gather(*(_regrade(grader, items[row.item_id], row, source.elicit)
                                   for row in batch if row.error is None))
            await store.call(Store.write_results, batch)
    except BaseException as exc:
        await store.call(Store.finish_run, new_id, "failed", f"regrade stopped: {type(exc).__name__}: {exc}")
        raise
    return await with_delta(store, await store.call(Store.finish_run, new_id, "completed"))


async def _regrade(grader: Grader, item: Item, row: ResultRow, elicit: str) -> None:
    elicited = row.pred if row.method == ELICITED else None
    await grade_reply(grader, item, row)
    if elicited is not None and (elicit == "all" or row.pred is None):
        row.pred, row.method, row.correct = elicited, ELICITED, elicited == item.answer
