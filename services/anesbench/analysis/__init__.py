"""Analyses over stored results: paired comparison of two runs, en↔zh agreement of one run, rules vs the
model's elicited letter."""

from anesbench.analysis.compare import Comparison, Outcome, RulesAgreement, compare_runs, language_agreement, rules_agreement

__all__ = ["Comparison", "Outcome", "RulesAgreement", "compare_runs", "language_agreement", "rules_agreement"]
