"""``anesbench compare`` output: table, JSON or Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from anesbench.analysis.compare import AgreementCell, Comparison, RulesAgreement
from anesbench.leaderboard import grid


def _p(value: float) -> str:
    return f"{value:.3g}" if value >= 0.001 else f"{value:.1e}"


def render_comparison(comparison: Comparison, fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"run_a": comparison.run_a, "run_b": comparison.run_b, "dropped_pairs": comparison.dropped,
                           "cells": [asdict(cell) for cell in comparison.cells]}, ensure_ascii=False, indent=2)
    header = ["lang", "level", "pairs", f"acc A ({comparison.run_a})", f"acc B ({comparison.run_b})", "A - B",
              "95% CI", "McNemar p", "won", "lost"]
    body = [
        [c.language, c.level, str(c.pairs), f"{c.accuracy_a:.3f}", f"{c.accuracy_b:.3f}", f"{c.difference:+.3f}",
         f"[{c.ci_low:+.3f}, {c.ci_high:+.3f}]", _p(c.p_value), str(c.won), str(c.lost)]
        for c in comparison.cells
    ]
    note = (f"paired over items both runs answered; {comparison.dropped} pair(s) dropped for an error on either side; "
            "won/lost = pairs only A / only B got right; CI: seeded paired bootstrap")
    return f"{grid(header, body, fmt)}\n\n{note}"


def render_agreement(run_id: str, cells: Sequence[AgreementCell], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"run_id": run_id, "cells": [asdict(cell) for cell in cells]}, ensure_ascii=False, indent=2)
    header = ["level", "pairs", "same letter en/zh", "acc en", "acc zh"]
    body = [[c.level, str(c.pairs), f"{c.same_letter:.3f}", f"{c.accuracy_en:.3f}", f"{c.accuracy_zh:.3f}"]
            for c in cells]
    return f"en↔zh agreement of run {run_id} (items answered in both languages)\n\n{grid(header, body, fmt)}"


def rules_agreement_json(agreement: RulesAgreement) -> dict[str, Any]:
    return {"run_id": agreement.run_id,
            "cells": [{**asdict(cell), "agreement": cell.agreement} for cell in agreement.cells],
            "disagreements": [asdict(d) for d in agreement.disagreements],
            "disagreements_total": agreement.disagreements_total}


def render_rules_agreement(agreement: RulesAgreement, fmt: str) -> str:
    """Per language and level: how often the rules' letter is the model's elicited one; then the disagreements."""
    if fmt == "json":
        return json.dumps(rules_agreement_json(agreement), ensure_ascii=False, indent=2)
    header = ["lang", "level", "elicited", "rules letter too", "same letter", "agreement", "rules: no answer"]
    body = [[c.language, c.level, str(c.elicited), str(c.both), str(c.same),
             "-" if c.agreement is None else f"{c.agreement:.3f}", str(c.rules_none)] for c in agreement.cells]
    text = (f"rules vs the model's elicited letter, run {agreement.run_id} (--elicit all)\n\n{grid(header, body, fmt)}")
    if agreement.disagreements:
        rows = [[d.item_id, d.language, d.level, str(d.sample), d.gold, d.rules, d.elicited]
                for d in agreement.disagreements]
        shown = len(agreement.disagreements)
        more = f" (first {shown} of {agreement.disagreements_total})" if shown < agreement.disagreements_total else ""
        text += (f"\n\ndisagreements{more}\n\n"
                 + grid(["item", "lang", "level", "sample", "gold", "rules", "elicited"], rows, fmt))
    return text
