"""The leaderboard query: accuracy per run, language and level, plus 'overall'.

Without a run id it takes, per (model, dataset), the newest completed run (or the newest run when
none has completed). An item with no extractable answer, or that never got one, counts in
``total`` and ``unanswered`` but not in ``correct``.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVEL_ORDER = ("system1", "system1.x", "system2", "overall")


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


LEADERBOARD_SQL = """
WITH chosen AS (
    SELECT id, model, dataset_name, created_at FROM runs
    WHERE (CAST(? AS VARCHAR) IS NULL AND id IN (
              SELECT id FROM runs
              QUALIFY row_number() OVER (
                  PARTITION BY model, dataset_name
                  ORDER BY (status = 'completed') DESC, created_at DESC, id DESC) = 1))
       OR id = ?
),
graded AS (
    SELECT r.run_id, c.model, c.dataset_name, c.created_at, r.language,
           CASE r.level WHEN 1 THEN 'system1' WHEN 2 THEN 'system1.x' ELSE 'system2' END AS level,
           coalesce(r.correct, false) AS correct,
           (r.pred IS NULL) AS unanswered
    FROM results r JOIN chosen c ON c.id = r.run_id
)
SELECT run_id, model, dataset_name, language, coalesce(level, 'overall') AS level,
       count(*) FILTER (WHERE correct) AS correct,
       count(*) AS total,
       (count(*) FILTER (WHERE correct))::DOUBLE / count(*) AS accuracy,
       count(*) FILTER (WHERE unanswered) AS unanswered
FROM graded
GROUP BY GROUPING SETS ((run_id, model, dataset_name, created_at, language, level),
                        (run_id, model, dataset_name, created_at, language))
ORDER BY model, dataset_name, created_at, run_id, CASE language WHEN 'en' THEN 0 ELSE 1 END,
         CASE coalesce(level, 'overall') WHEN 'system1' THEN 0 WHEN 'system1.x' THEN 1
              WHEN 'system2' THEN 2 ELSE 3 END
"""
