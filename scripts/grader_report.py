"""Grade the labelled reply corpora and print how the answer grader does on each.

For every corpus (by default tests/data/grader_corpus.jsonl and, if present, the real-model
replies in tests/data/grader_corpus_real.jsonl): accuracy overall, per language, per family (tag),
per prompt template (real replies) and per method the grader reported; the confusion counts;
EVERY wrong letter and every false answer (a letter where the label says "no answer") in full;
the other failing cases as snippets.

    .venv/bin/python scripts/grader_report.py [--corpus FILE ...] [--snippet 160] [--speed]

Exit 1 when a corpus fails its gate (accuracy below its floor, any wrong letter, any false
answer: the same gate as tests/unit/test_grading_corpus.py), 2 on a malformed corpus, else 0.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections import Counter
from pathlib import Path

from anesbench.errors import InvalidInput
from anesbench.grading import extract_answer
from anesbench_testkit.corpus import FLOORS, OUTCOMES, Graded, grade, load, tally, template_of

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
DEFAULT_CORPORA = (DATA / "grader_corpus.jsonl", DATA / "grader_corpus_real.jsonl")
DEFAULT_FLOOR = 0.97


def _pct(ok: int, n: int) -> str:
    return f"{ok}/{n} = {ok / n:.3f}" if n else "0/0"


def _table(title: str, rows: dict[str, tuple[int, int]], by_accuracy: bool = False) -> None:
    print(f"\n{title}:")
    order = sorted(rows.items(), key=lambda kv: (kv[1][0] / kv[1][1], kv[0]) if by_accuracy else kv[0])
    for key, (ok, n) in order:
        print(f"  {key:<24} {_pct(ok, n)}")


def _show(g: Graded, snippet: int | None) -> str:
    case, got = g.case, g.got
    text = case["response"].replace("\n", " ⏎ ")
    if snippet is not None and len(text) > snippet:
        text = "…" + text[-snippet:]
    return (f"  {case['id']} [{case['lang']}, {template_of(case)}] {g.outcome}: expected {case['expected']!r}, "
            f"got {got.pred!r} ({got.method}); tags={','.join(case['tags'])}\n      {text}")


def report(path: Path, snippet: int, speed: bool) -> bool:
    """Print the report of one corpus; whether it passes its gate."""
    cases = load(path)
    graded = grade(cases)
    confusion = Counter(g.outcome for g in graded)
    n = len(graded)
    floor = FLOORS.get(path.name, DEFAULT_FLOOR)
    print(f"corpus: {path} ({n} replies, floor {floor:.2f})")
    print(f"accuracy overall: {_pct(confusion['ok'], n)}")
    _table("per language", tally(graded, lambda g: [g.case["lang"]]))
    _table("per family (tag)", tally(graded, lambda g: g.case["tags"]), by_accuracy=True)
    templates = tally(graded, lambda g: [template_of(g.case)])
    if set(templates) != {"-"}:
        _table("per template", templates)
        _table("per template and language", tally(graded, lambda g: [f"{template_of(g.case)}/{g.case['lang']}"]))
    _table("per method (accuracy of the replies the grader gave that method)", tally(graded, lambda g: [g.got.method]))
    print("\nconfusion:")
    for kind in OUTCOMES:
        print(f"  {kind:<13} {confusion[kind]}")
    if speed:
        rounds = timeit.repeat(
            lambda: [extract_answer(c["choices"], c["response"], finish_reason=c["finish_reason"]) for c in cases],
            number=3, repeat=3,
        )
        print(f"\nspeed: {min(rounds) / (3 * n) * 1e6:.1f} µs per reply (mean over the corpus, best of 3 rounds)")
    guesses = [g for g in graded if g.outcome in ("wrong_letter", "false_answer")]
    print(f"\nwrong letters and false answers ({len(guesses)}):")
    for g in guesses:
        print(_show(g, None))
    missed = [g for g in graded if g.outcome == "missed"]
    if missed:
        print(f"\nmissed answers ({len(missed)}):")
        for g in missed:
            print(_show(g, snippet))
    passed = n > 0 and confusion["ok"] / n >= floor and not guesses
    print(f"\ngate: {'pass' if passed else 'FAIL'}\n")
    return passed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--corpus", type=Path, action="append", help="a corpus file (repeatable; default: both)")
    ap.add_argument("--snippet", type=int, default=160, help="characters of each missed reply to show")
    ap.add_argument("--speed", action="store_true", help="also time the grader over each corpus")
    args = ap.parse_args(argv)
    paths = args.corpus or [p for p in DEFAULT_CORPORA if p.exists()]
    try:
        results = [report(path, args.snippet, args.speed) for path in paths]
    except (InvalidInput, OSError) as exc:
        print(f"grader_report: {exc}", file=sys.stderr)
        return 2
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
