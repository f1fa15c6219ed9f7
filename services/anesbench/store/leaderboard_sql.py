"""The leaderboard query: accuracy per run, language and level, plus 'overall'.

Every stored result is one of four outcomes (:data:`OUTCOME_SQL`): ``error`` (the request never
produced a usable response: refused connection, timeout, 5xx after every attempt), ``unanswered`` (a
response with no single committed answer), ``correct`` or ``wrong``. ``total`` counts graded
responses only (correct + wrong + unanswered), so an outage never lowers accuracy; errors are
counted apart.

Which runs: by default the newest *clean* run (completed, no errors) of each series: model, dataset
name and content (sha256), configuration (prompt sha256, max tokens, temperature, samples, elicitation
mode, scoring) and extractor version. A run of the first N items only (``--limit``) is shown for a series only
when no clean run of the whole dataset exists, and is flagged (``item_limit``). ``include_incomplete``
adds, per series, the newest run whatever its status when that is not the clean one. Explicit run ids
pick exactly those runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from anesbench.dataset.model import LEVEL_NAMES
from anesbench.defaults import DEFAULT_ELICIT, DEFAULT_SCORING

LEVEL_ORDER = (*LEVEL_NAMES.values(), "overall")

OUTCOME_SQL = """CASE WHEN error IS NOT NULL AND response IS NULL THEN 'error'
     WHEN pred IS NULL THEN 'unanswered'
     WHEN correct THEN 'correct' ELSE 'wrong' END"""
"""One result's outcome, from the stored columns (an error with no usable response is an error)."""

LEVEL_SQL = "CASE level " + " ".join(f"WHEN {number} THEN '{name}'" for number, name in LEVEL_NAMES.items()) + " END"
SERIES = ("model, dataset_name, dataset_sha256, prompt_sha256, max_tokens, temperature, samples, "
          "coalesce(elicit, 'off'), coalesce(extractor_version, ''), coalesce(scoring, 'generate')")
"""What makes runs comparable: a new value of any of these starts a new series."""
WHOLE_FIRST = "(item_limit IS NOT NULL), created_at DESC, id DESC"
"""Within a series: a run of every item before any partial one, then the newest."""
RULES_CORRECT_SQL = "CASE WHEN method_rules IS NULL THEN coalesce(correct, false) ELSE coalesce(pred_rules = answer, false) END"
"""Whether the rules alone got a result right (results stored before elicitation existed: their ``correct``)."""


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    bin: int  # confidence in [bin / 10, (bin + 1) / 10), 1.0 in bin 9
    n: int
    correct: int
    confidence: float  # the sum of the bin's confidences


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
    brier: float | None = None  # calibration (see calibration_sql): logprobs runs only
    ece: float | None = None  # logprobs runs and runs with several samples
    reliability: tuple[ReliabilityBin, ...] = ()  # the confidence bins ece is computed from (the report's diagram)
    scoring: str = DEFAULT_SCORING


CLEAN_RUN = "status = 'completed' AND NOT EXISTS (SELECT 1 FROM results e WHERE e.run_id = runs.id AND " \
            "e.error IS NOT NULL AND e.response IS NULL) AND NOT EXISTS (SELECT 1 FROM run_cells e " \
            "WHERE e.run_id = runs.id AND e.errors > 0)"


def chosen_runs_sql(run_ids: list[str] | None, include_incomplete: bool) -> tuple[str, list[object]]:
    """SQL selecting the ids of the runs to show, and its parameters."""
    if run_ids:
        return "SELECT unnest(?::VARCHAR[]) AS id", [run_ids]
    first = f"QUALIFY row_number() OVER (PARTITION BY {SERIES} ORDER BY {WHOLE_FIRST}) = 1"
    clean = f"SELECT id FROM runs WHERE {CLEAN_RUN} {first}"
    return (f"{clean} UNION SELECT id FROM runs {first}" if include_incomplete else clean), []


def calibration_sql(run_ids: str) -> str:
    """``brier``, ``ece`` and the confidence bins behind it (``reliability``: per non-empty bin its predictions,
    how many are right, the sum of their confidences) per (run, language, level) and per (run, language) as
    'overall', of the runs ``run_ids``. What a prediction and its confidence are: docs/architecture.md,
    leaderboard. Sums of doubles are ordered, so that every read (a read-only copy scans in parallel) gives
    the same bits.
    """
    return f"""
WITH votes AS (  -- several samples: an item is right when its one most frequent prediction is the answer
    SELECT *, max(n) OVER (PARTITION BY run_id, item_id, language) AS top
    FROM (SELECT run_id, item_id, language, {LEVEL_SQL} AS level, answer, pred, count(*) AS n FROM results
          WHERE run_id IN (SELECT id FROM runs WHERE samples > 1 AND id IN ({run_ids})) AND letter_probs IS NULL
            AND NOT (error IS NOT NULL AND response IS NULL)
          GROUP BY ALL)
),
predictions AS (  -- Brier: Σ_k (p_k − 1[k = answer])² = Σ_k p_k² − 2 p_answer + 1
    SELECT run_id, language, level, hit, list_max(map_values(probs)) AS confidence,
           list_sum(list_transform(map_values(probs), p -> p * p)) - 2 * coalesce(probs[answer], 0) + 1 AS brier
    FROM (SELECT run_id, language, {LEVEL_SQL} AS level, coalesce(correct, false) AS hit, answer,
                 CAST(letter_probs::JSON AS MAP(VARCHAR, DOUBLE)) AS probs
          FROM results WHERE run_id IN ({run_ids}) AND letter_probs IS NOT NULL)
    UNION ALL
    SELECT run_id, language, level,
           bool_or(n = top AND coalesce(pred = answer, false)) AND count(*) FILTER (WHERE n = top) = 1,
           max(n) / sum(n), NULL
    FROM votes GROUP BY run_id, item_id, language, level
),
bins AS (
    SELECT run_id, language, coalesce(level, 'overall') AS level, least(floor(confidence * 10), 9)::INTEGER AS bin,
           count(*) AS n, count(*) FILTER (WHERE hit) AS correct, sum(confidence ORDER BY confidence) AS confidence,
           sum(brier ORDER BY brier) AS brier
    FROM predictions
    GROUP BY GROUPING SETS ((run_id, language, level, bin), (run_id, language, bin))
)
SELECT run_id, language, level, sum(brier ORDER BY bin) / sum(n) AS brier,
       sum(abs(correct - confidence) ORDER BY bin) / sum(n) AS ece,
       list({{'bin': bin, 'n': n, 'correct': correct, 'confidence': confidence}} ORDER BY bin) AS reliability
FROM bins GROUP BY run_id, language, level
"""


def sample_figures_sql(run_ids: str) -> str:
    """For the runs ``run_ids`` with several samples per question, per (run, language, level) and 'overall',
    leaving errors out: ``mean_accuracy``, the accuracy of each sample index averaged over the samples;
    ``majority_accuracy``, per question its most frequent prediction ("no answer" is a vote too, a tie is no
    answer), right or wrong; ``agreement``, the share of questions whose samples all gave one prediction."""
    return f"""
WITH graded AS (
    SELECT run_id, item_id, language, {LEVEL_SQL} AS level, sample, answer, pred FROM results
    WHERE run_id IN (SELECT id FROM runs WHERE samples > 1 AND id IN ({run_ids}))
      AND NOT (error IS NOT NULL AND response IS NULL)
),
items AS (
    SELECT run_id, language, level, count(*) = 1 AS agree,
           bool_or(n = top AND coalesce(pred = answer, false)) AND count(*) FILTER (WHERE n = top) = 1 AS majority
    FROM (SELECT *, max(n) OVER (PARTITION BY run_id, item_id, language) AS top
          FROM (SELECT run_id, item_id, language, level, answer, pred, count(*) AS n FROM graded GROUP BY ALL))
    GROUP BY run_id, item_id, language, level
),
per_sample AS (
    SELECT run_id, language, coalesce(level, 'overall') AS level, sample,
           count(*) FILTER (WHERE pred = answer) / count(*) AS accuracy
    FROM graded GROUP BY GROUPING SETS ((run_id, language, level, sample), (run_id, language, sample))
)
SELECT run_id, language, level, sum(accuracy ORDER BY sample) / count(*) AS mean_accuracy,
       any_value(i.majority_accuracy) AS majority_accuracy, any_value(i.agreement) AS agreement
FROM per_sample JOIN (
    SELECT run_id, language, coalesce(level, 'overall') AS level, count(*) FILTER (WHERE majority) / count(*)
           AS majority_accuracy, count(*) FILTER (WHERE agree) / count(*) AS agreement
    FROM items GROUP BY GROUPING SETS ((run_id, language, level), (run_id, language))
) i USING (run_id, language, level)
GROUP BY run_id, language, level
"""


# The columns of a cell, in ``run_cells`` order: which results each counts.
COUNTS = {"correct": "outcome = 'correct'", "total": "outcome <> 'error'", "unanswered": "outcome = 'unanswered'",
          "errors": "outcome = 'error'", "done": "ok", "failed": "NOT ok",
          "done_unanswered": "ok AND outcome = 'unanswered'", "elicited": "outcome <> 'error' AND elicited",
          "rules_correct": "outcome <> 'error' AND rules_correct"}
FIGURES = """SELECT c.*, s.mean_accuracy, s.majority_accuracy, s.agreement, k.brier, k.ece, k.reliability
FROM counts c LEFT JOIN ({samples}) s USING (run_id, language, level)
LEFT JOIN ({calibration}) k USING (run_id, language, level)"""


def cell_counts_sql(run_ids: str, figures: bool = True) -> str:
    """Counts per (run, language, level) and per (run, language) as 'overall', from the stored results
    of the runs ``run_ids`` (a SQL relation of ids), with their sample figures and calibration unless
    ``figures`` is false: what the leaderboard shows and pruning keeps."""
    return f"""
WITH graded AS (
    SELECT r.run_id, {LEVEL_SQL} AS level, r.language, {OUTCOME_SQL} AS outcome, r.error IS NULL AS ok,
           r.method = 'elicited' AS elicited, {RULES_CORRECT_SQL} AS rules_correct
    FROM results r WHERE r.run_id IN ({run_ids})
),
counts AS (
    SELECT run_id, language, coalesce(level, 'overall') AS level,
           {", ".join(f"count(*) FILTER (WHERE {where}) AS {name}" for name, where in COUNTS.items())}
    FROM graded
    GROUP BY GROUPING SETS ((run_id, language, level), (run_id, language))
)
{FIGURES.format(samples=sample_figures_sql(run_ids), calibration=calibration_sql(run_ids)) if figures
 else "SELECT * FROM counts"}
"""


def cells_sql(run_ids: str, figures: bool = True) -> str:
    """The cell counts of the runs ``run_ids`` (with their figures unless ``figures`` is false): counted
    from their results, or, for a pruned run, read from ``run_cells`` (a pruned run has no results left,
    so no run is counted twice)."""
    columns = "run_id, language, level, correct, total, unanswered, errors, elicited, rules_correct"
    columns += ", mean_accuracy, majority_accuracy, agreement, brier, ece, reliability" if figures else ""
    return f"""SELECT {columns} FROM ({cell_counts_sql(run_ids, figures)})
    UNION ALL SELECT {columns} FROM run_cells WHERE run_id IN ({run_ids})"""


def leaderboard_sql(chosen: str) -> str:
    """The board of the runs ``chosen`` selects, a column per :class:`LeaderboardRow` field but the interval."""
    return f"""
WITH chosen AS ({chosen}),
cells AS ({cells_sql("SELECT id FROM chosen")})
SELECT c.run_id, r.model, r.dataset_name AS dataset, c.language, c.level, c.correct, c.total,
       CASE WHEN c.total = 0 THEN 0.0 ELSE c.correct::DOUBLE / c.total END AS accuracy,
       c.unanswered, c.errors, r.status, r.prompt_template, r.prompt_sha256, r.max_tokens, r.temperature, r.samples,
       c.mean_accuracy, c.majority_accuracy, c.agreement, r.item_limit, coalesce(r.elicit, 'off') AS elicit, c.elicited,
       CASE WHEN c.total = 0 THEN 0.0 ELSE c.rules_correct::DOUBLE / c.total END AS accuracy_strict, c.brier, c.ece,
       c.reliability, coalesce(r.scoring, 'generate') AS scoring
FROM cells c JOIN runs r ON r.id = c.run_id
ORDER BY r.model, r.dataset_name, r.created_at, c.run_id, CASE c.language WHEN 'en' THEN 0 ELSE 1 END,
         list_position({list(LEVEL_ORDER)!r}, c.level)
"""
