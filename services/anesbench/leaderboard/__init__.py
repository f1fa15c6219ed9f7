"""Leaderboard rendering: the paper's shape (system1 / system1.x / system2 / overall) as text or data."""

from anesbench.leaderboard.render import FORMATS, render_leaderboard, render_runs

__all__ = ["FORMATS", "render_leaderboard", "render_runs"]
