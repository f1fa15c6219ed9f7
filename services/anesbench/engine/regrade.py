"""What stored replies are worth: the rules' verdict on a reply, a completed run graded again, the paired delta.

A regrade is a new run and sends nothing: the old one's record with the current harness and extractor
versions, so it starts (or continues) the series of that extractor version; each result keeps its reply
and names the run it came from (``reused_from``). A letter the follow-up turn gave stays where the run
would have used it: always under ``--elicit all``, else where the rules, as they read now, still find no
answer.

Where a run completes (:func:`with_delta`: a run executed, a run regraded), it is paired with the run
before it and the delta stored and published, so an embedded run and a dispatcher's alike store their
deltas; the store decides which run, if any, is the base (:meth:`~anesbench.store.Store.delta_base`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import datetime

from anesbench import __version__, metrics
from anesbench.analysis.compare import Outcome, compare_runs
from anesbench.dataset import Dataset, Item
from anesbench.engine.config import new_run_id
from anesbench.errors import ConfigConflict, InvalidInput, Ungradable
from anesbench.grader import Grader
from anesbench.grading import EXTRACTOR_VERSION
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.store.records import ResultRow, RunDelta, RunRecord

log = logging.getLogger(__name__)
BATCH = 512  # replies graded concurrently and written together
ELICITED = "elicited"  # the method of a letter the follow-up turn gave
UNGRADABLE = "none_ungradable"  # the method of a reply the grader could not handle (pred null)


async def grade_reply(grader: Grader, item: Item, row: ResultRow) -> None:
    """The rules' verdict on a stored reply, as the row's ``pred`` and ``pred_rules``; a reply that alone
    cannot be graded (too large, over the grading deadline) gets no letter. GraderUnavailable propagates."""
    try:
        extraction = await grader.grade(item.texts[row.language].options, row.response or "", row.finish_reason)
    except (InvalidInput, Ungradable) as exc:
        log.info("run %s: item %s (%s) cannot be graded: %s", row.run_id, item.id, row.language, exc)
        row.pred, row.method, row.correct = None, UNGRADABLE, False
    else:
        row.pred, row.method = extraction.pred, extraction.method
        row.correct = extraction.pred == item.answer
    row.pred_rules, row.method_rules = row.pred, row.method


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


async def record_delta(store: AsyncStore, run: RunRecord) -> list[RunDelta]:
    """Pair ``run`` with its base on their common items (overall, per language and across them), store
    and publish the deltas; none when the run is not pairable or the first of its series."""
    base_id = await store.call(Store.delta_base, run.id)
    if base_id is None:
        return []
    base = await store.call(Store.get_run, base_id)
    new_outcomes = [Outcome(*row) for row in await store.call(Store.outcomes, run.id)]
    base_outcomes = [Outcome(*row) for row in await store.call(Store.outcomes, base_id)]
    try:  # the bootstrap is CPU work: off the loop
        comparison = await asyncio.to_thread(compare_runs, run, new_outcomes, base, base_outcomes)
    except InvalidInput as exc:  # e.g. one run asked in en only, the other in zh only
        log.info("run %s: no delta against %s: %s", run.id, base_id, exc)
        return []
    deltas = [RunDelta(run.id, base_id, cell.language, cell.pairs, cell.difference, cell.ci_low, cell.ci_high,
                       cell.p_value) for cell in comparison.cells if cell.level == "overall"]
    await store.call(Store.save_deltas, deltas)
    for delta in deltas:
        metrics.set_delta(run.model, run.dataset_name, delta.language, delta.delta, delta.pvalue)
    return deltas


async def with_delta(store: AsyncStore, final: RunRecord) -> RunRecord:
    """A run's final record, with its delta when it completed and could be paired."""
    if final.status == "completed" and await record_delta(store, final):
        return await store.call(Store.get_run, final.id)
    return final
