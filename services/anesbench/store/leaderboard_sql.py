"""The leaderboard query: accuracy per run, language and level, plus 'overall'.

Every stored result is one of four outcomes (:data:`OUTCOME_SQL`): ``error`` (the request never
produced a usable response: refused connection, timeout, 5xx after every attempt), ``unanswered`` (a
response with no single committed answer), ``correct`` or ``wrong``. ``total`` counts graded
responses only (correct + wrong + unanswered), so an outage never lowers accuracy; errors are
counted apart.

Which runs: by default the newest *clean* run (completed, no errors) of each series: model, dataset
name and content (sha256), configuration (prompt sha256, max tokens, temperature, samples, elicitation
mode) and extractor version. A run of the first N items only (``--limit``) is shown for a series only
when no clean run of the whole dataset exists, and is flagged (``item_limit``). ``include_incomplete``
adds, per series, the newest run whatever its status when that is not the clean one. Explicit run ids
pick exactly those runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from anesbench.dataset.model import LEVEL_NAMES
from anesbench.defaults import DEFAULT_ELICIT

LEVEL_ORDER = (*LEVEL_NAMES.values(), "overall")

OUTCOME_SQL = """CASE WHEN error IS NOT NULL AND response IS NULL THEN 'error'
     WHEN pred IS NULL THEN 'unanswered'
     WHEN correct THEN 'correct' ELSE 'wrong' END"""
"""One result's outcome, from the stored columns (an error with no usable response is an error)."""

LEVEL_SQL = "CASE level " + " ".join(f"WHEN {number} THEN '{name}'" for number, name in LEVEL_NAMES.items()) + " END"
SERIES = ("model, dataset_name, dataset_sha256, prompt_sha256, max_tokens, temperature, samples, "
          "coalesce(elicit, 'off'), coalesce(extractor_version, '')")
"""What makes runs comparable: a new value of any of these starts a new series."""
WHOLE_FIRST = "(item_limit IS NOT NULL), created_at DESC, id DESC"
"""Within a series: a run of every item before any partial one, then the newest."""
RULES_CORRECT_SQL = "CASE WHEN method_rules IS NULL THEN coalesce(correct, false) ELSE coalesce(pred_rules = answer, false) END"
"""Whether the rules alone got a result right (results stored before elicitation existed: their ``correct``)."""


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    run_id: str
    model: str
    dataset: str
    language: str
    level: str
    correct: int
    total: int
    accuracy: float
    unanswered: int
    errors: int = 0
    status: str = ""
    ci_low: float = 0.0
    ci_high: float = 1.0
    prompt_template: str = ""
    prompt_sha256: str = ""
    max_tokens: int = 0
    temperature: float = 0.0
    samples: int = 1
    # Only for runs with several samples per question (None otherwise).
    mean_accuracy: float | None = None
    majority_accuracy: float | None = None
    agreement: float | None = None
    item_limit: int | None = None  # the run covered the first N items only (--limit): flagged wherever shown
    elicit: str = DEFAULT_ELICIT
    elicited: int = 0  # answers whose letter came from the follow-up turn (in ``correct``/``accuracy``)
    accuracy_strict: float = 0.0  # the rules alone: elicited letters count as unanswered (or as the rules read them)


CLEAN_RUN = "status = 'completed' AND NOT EXISTS (SELECT 1 FROM results e WHERE e.run_id = runs.id AND " \
            "e.error IS NOT NULL AND e.response IS NULL) AND NOT EXISTS (SELECT 1 FROM run_cells e " \
            "WHERE e.run_id = runs.id AND e.errors > 0)"


def chosen_runs_sql(run_ids: list[str] | None, include_incomplete: bool) -> tuple[str, list[object]]:
    """SQL selecting the ids of the runs to show, and its parameters."""
    if run_ids:
        return "SELECT unnest(?::VARCHAR[]) AS id", [run_ids]
    clean = f"""SELECT id FROM runs WHERE {CLEAN_RUN}
                QUALIFY row_number() OVER (PARTITION BY {SERIES} ORDER BY {WHOLE_FIRST}) = 1"""
    if not include_incomplete:
        return clean, []
    newest = f"""SELECT id FROM runs
                 QUALIFY row_number() OVER (PARTITION BY {SERIES} ORDER BY {WHOLE_FIRST}) = 1"""
    return f"{clean} UNION {newest}", []


def cell_counts_sql(run_ids: str) -> str:
    """Counts per (run, language, level) and per (run, language) as 'overall', from the stored results
    of the runs ``run_ids`` (a SQL relation of ids): what the leaderboard shows and pruning keeps."""
    return f"""
WITH graded AS (
    SELECT r.run_id, {LEVEL_SQL} AS level, r.language, {OUTCOME_SQL} AS outcome, r.error IS NULL AS ok,
           r.method = 'elicited' AS elicited, {RULES_CORRECT_SQL} AS rules_correct
    FROM results r WHERE r.run_id IN ({run_ids})
)
SELECT run_id, language, coalesce(level, 'overall') AS level,
       count(*) FILTER (WHERE outcome = 'correct') AS correct,
       count(*) FILTER (WHERE outcome <> 'error') AS total,
       count(*) FILTER (WHERE outcome = 'unanswered') AS unanswered,
       count(*) FILTER (WHERE outcome = 'error') AS errors,
       count(*) FILTER (WHERE ok) AS done,
       count(*) FILTER (WHERE NOT ok) AS failed,
       count(*) FILTER (WHERE ok AND outcome = 'unanswered') AS done_unanswered,
       count(*) FILTER (WHERE outcome <> 'error' AND elicited) AS elicited,
       count(*) FILTER (WHERE outcome <> 'error' AND rules_correct) AS rules_correct
FROM graded
GROUP BY GROUPING SETS ((run_id, language, level), (run_id, language))
"""


def cells_sql(run_ids: str) -> str:
    """The cell counts of the runs ``run_ids``: counted from their results, or, for a pruned run, read
    from ``run_cells`` (a pruned run has no results left, so no run is counted twice)."""
    columns = "run_id, language, level, correct, total, unanswered, errors, elicited, rules_correct"
    return f"""SELECT {columns} FROM ({cell_counts_sql(run_ids)})
    UNION ALL SELECT {columns} FROM run_cells WHERE run_id IN ({run_ids})"""


def leaderboard_sql(chosen: str) -> str:
    """The board of the runs ``chosen`` selects."""
    return f"""
WITH chosen AS ({chosen}),
cells AS ({cells_sql("SELECT id FROM chosen")})
SELECT c.run_id, r.model, r.dataset_name, c.language, c.level, c.correct, c.total,
       CASE WHEN c.total = 0 THEN 0.0 ELSE c.correct::DOUBLE / c.total END,
       c.unanswered, c.errors, r.status, r.prompt_template, r.prompt_sha256, r.max_tokens, r.temperature, r.samples,
       r.item_limit, coalesce(r.elicit, 'off'), c.elicited,
       CASE WHEN c.total = 0 THEN 0.0 ELSE c.rules_correct::DOUBLE / c.total END
FROM cells c JOIN runs r ON r.id = c.run_id
ORDER BY r.model, r.dataset_name, r.created_at, c.run_id, CASE c.language WHEN 'en' THEN 0 ELSE 1 END,
         list_position({list(LEVEL_ORDER)!r}, c.level)
"""


SAMPLES_SQL = f"""
SELECT run_id, item_id, language, {LEVEL_SQL} AS level, sample, answer, pred
FROM results WHERE run_id = ? AND NOT (error IS NOT NULL AND response IS NULL)
ORDER BY item_id, language, sample
"""
