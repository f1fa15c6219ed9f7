"""What a completed run is worth against the run before it: the paired delta, stored and published.

Called where a run completes (:func:`with_delta`: a run executed, a run regraded), so an
embedded run and a dispatcher's alike store their deltas; the store decides which run, if any, is the
base (:meth:`~anesbench.store.Store.delta_base`).
"""

from __future__ import annotations

import asyncio
import logging

from anesbench import metrics
from anesbench.analysis.compare import Outcome, compare_runs
from anesbench.errors import InvalidInput
from anesbench.store.async_store import AsyncStore
from anesbench.store.database import Store
from anesbench.store.records import RunDelta, RunRecord

log = logging.getLogger(__name__)


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
