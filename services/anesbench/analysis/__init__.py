"""Analyses over stored results: paired comparison of two runs, en↔zh agreement of one run."""

from anesbench.analysis.compare import Comparison, Outcome, compare_runs, language_agreement

__all__ = ["Comparison", "Outcome", "compare_runs", "language_agreement"]
