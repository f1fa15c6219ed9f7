"""Leaderboard rows and export rows survive the trip through protobuf unchanged."""

from __future__ import annotations

from anesbench.store.export import EXPORT_NAMES
from anesbench.store.leaderboard_sql import LeaderboardRow
from anesbench.wire.convert import export_row_from_pb, export_row_to_pb, leaderboard_from_pb, leaderboard_to_pb


def test_leaderboard_rows_round_trip_with_and_without_sample_figures() -> None:
    rows = [
        LeaderboardRow("r", "m", "d", "en", "overall", 3, 4, 0.75, 1, 2, "failed", 0.3, 0.95, "t", "p" * 64, 512,
                       0.7, 1),
        LeaderboardRow("s", "m", "d", "zh", "system1", 1, 2, 0.5, 0, 0, "completed", 0.1, 0.9, "t", "p" * 64, 2048,
                       0.0, 3, 0.5, 0.5, 0.0),
    ]
    assert leaderboard_from_pb(leaderboard_to_pb(rows)) == rows


def test_export_rows_round_trip_keeping_nulls() -> None:
    row = dict.fromkeys(EXPORT_NAMES)
    row.update(item_id="q1", language="en", level="system2", sample=0, gold="A", outcome="error", attempts=6,
               error="HTTP 503 after 6 attempts")
    assert export_row_from_pb(export_row_to_pb(tuple(row.values()))) == row
    row.update(predicted="B", method="boxed", outcome="wrong", correct=False, response="\\boxed{B}",
               completion_tokens=12, latency_s=0.25, error=None)
    assert export_row_from_pb(export_row_to_pb(tuple(row.values()))) == row
