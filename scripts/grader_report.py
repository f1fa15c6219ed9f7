"""Grade the labelled reply corpora and print how the answer grader does on each.

For every corpus (by default tests/data/grader_corpus.jsonl and every real-model file that
tests/data/corpus_split.txt declares, tuning or held-out): accuracy overall, per language, per
family (tag), per prompt template (real replies) and per method the grader reported; the confusion
counts (ok / wrong_letter / missed / false_answer) per model, template and language; how many the
seed's extractor (bench/paper_style.py, the AnesBench paper's regex) got right where it found a
letter; EVERY wrong letter and every false answer (a letter where the label says "no answer") in
full; the other failing cases as snippets; and how many compiled patterns the grader holds.

    .venv/bin/python scripts/grader_report.py [--corpus FILE ...] [--snippet 160] [--speed] [--hostile]
    .venv/bin/python scripts/grader_report.py --scan

``--hostile`` also times the grader (CPU seconds of one call) on hostile replies of 1 and 2 MiB;
``--scan`` looks for superlinear cost: every unit of :data:`SCAN_ATOMS` (alone, with each joiner,
and in pairs) repeated to 4 000 and 16 000 characters, each graded in a process of its own with a
time limit, and prints the units over 50 ms or growing more than 7× (a few minutes).

Exit 1 when a corpus fails its gate (any wrong letter, any false answer; for a tuning corpus with a
floor, accuracy below it: the same gate as tests/unit/test_grading_corpus.py), 2 on a malformed
corpus, else 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
import timeit
from collections import Counter
from pathlib import Path

from anesbench.errors import InvalidInput
from anesbench.grading import extract_answer
from anesbench_testkit.corpus import (
    FLOORS,
    OUTCOMES,
    Graded,
    confusion,
    grade,
    grading_patterns,
    load,
    split,
    tally,
    template_of,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _seed_pattern() -> re.Pattern[str]:
    """The letter regex of bench/paper_style.py (the AnesBench paper's extractor, reproduced)."""
    spec = importlib.util.spec_from_file_location("paper_style", ROOT / "bench" / "paper_style.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pattern: re.Pattern[str] = module.ANSWER
    return pattern


def _seed_right(graded: list[Graded], seed: re.Pattern[str]) -> int:
    """Replies the seed's regex read a letter from, and the labelled one."""
    right = 0
    for g in graded:
        m = seed.search(g.case["response"])
        right += m is not None and m.group(1).upper() == g.case["expected"]
    return right


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


def _confusion_table(title: str, rows: dict[str, Counter[str]]) -> None:
    print(f"\n{title}:")
    print(f"  {'':<40} " + " ".join(f"{kind:>13}" for kind in OUTCOMES))
    for key, counts in sorted(rows.items()):
        print(f"  {key:<40} " + " ".join(f"{counts[kind]:>13}" for kind in OUTCOMES))


def report(path: Path, part: str, model: str, snippet: int, speed: bool, seed: re.Pattern[str]) -> bool:
    """Print the report of one corpus; whether it passes its gate."""
    cases = load(path)
    graded = grade(cases)
    counts = Counter(g.outcome for g in graded)
    n = len(graded)
    floor = FLOORS.get(path.name) if part != "held_out" else None
    print(f"corpus: {path} ({n} replies, {part}, model {model}, floor {'none' if floor is None else f'{floor:.2f}'})")
    print(f"accuracy overall: {_pct(counts['ok'], n)}")
    labelled = sum(g.case["expected"] is not None for g in graded)
    right = sum(g.outcome == "ok" and g.case["expected"] is not None for g in graded)
    print(f"right letters: {right} of {labelled} labelled with one; the seed's extractor where it found a letter: "
          f"{_seed_right(graded, seed)}")
    _confusion_table("confusion per model, template and language", confusion(
        graded, lambda g: [f"{model}/{template_of(g.case)}/{g.case['lang']}"]))
    _table("per language", tally(graded, lambda g: [g.case["lang"]]))
    _table("per family (tag)", tally(graded, lambda g: g.case["tags"]), by_accuracy=True)
    templates = tally(graded, lambda g: [template_of(g.case)])
    if set(templates) != {"-"}:
        _table("per template", templates)
        _table("per template and language", tally(graded, lambda g: [f"{template_of(g.case)}/{g.case['lang']}"]))
    _table("per method (accuracy of the replies the grader gave that method)", tally(graded, lambda g: [g.got.method]))
    print("\nconfusion:")
    for kind in OUTCOMES:
        print(f"  {kind:<13} {counts[kind]}")
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
    passed = n > 0 and (floor is None or counts["ok"] / n >= floor) and not guesses
    print(f"\ngate: {'pass' if passed else 'FAIL'}\n")
    return passed


#: units repeated to a hostile reply: what once made the patterns slow, and what the rules anchor on
HOSTILE_UNITS = (
    "Dantrolene reduces calcium release. ", "<think>", "</think>", "<think><answer><reasoning>", "A", "A ", "A or ",
    ":", "so we say:\nC\n", "the answer is:\n", "answer is ", "A. Propofol\n", "A. Propofol – Not x\n",
    "C is correct. ", "答案是", "最", "[(", "\\boxed{", '"answer": "', "propofol ", "the best x is ", " \n",
    "答案：Ｃ（）", "~~a", "answer is" + " " * 400, "-", "A、", "A、 ",
)


def hostile() -> None:
    """Print the CPU time of one grading call per hostile reply and size."""
    choices = {"A": "Propofol", "B": "Ketamine", "C": "Dantrolene", "D": "Succinylcholine"}
    print(f"{'hostile reply (unit repeated)':<36} {'1 MiB':>9} {'2 MiB':>9}")
    for unit in HOSTILE_UNITS:
        row = []
        for size in (1 << 20, 2 << 20):
            text = unit * (size // len(unit.encode()))
            started = time.process_time()
            extract_answer(choices, text, finish_reason="stop")
            row.append(time.process_time() - started)
        print(f"{unit!r:<36} " + " ".join(f"{seconds * 1000:>6.0f} ms" for seconds in row))


SCAN_ATOMS = (
    "answer", "answer is", "is", "option", "the", "best", "most", "most likely", "最", "最可能", "答案", "答案是", "选", "是",
    "not", "could be", "therefore", "i choose", "leaving", "A", "a", "C", ":", ".", ",", "-", "(", "[", "{", '"', "'",
    "、", "。", "\n", " ", "a-", "x-", "bestest", "is the", "<answer>", "\\boxed{", "A.", "A)", "(A)", "Option A", "选项A",
    "A项", "A is", "is A", "correct", "wrong", "不", "正确", "错误", "?", "吗", "of choice", "propofol", "丙泊酚", "–", "→",
    "=>", "<think>", "</think>", "yes", "no", "if", "would", "either", "or", "和", "或", "也", "可能是",
)
SCAN_JOINERS = ("", " ", "\n", ":", ", ")
SCAN_LIMIT_SECONDS = 20


def _time_unit(unit: str) -> list[float]:
    """CPU seconds of grading ``unit`` repeated to 4 000 and 16 000 characters (the worse finish reason)."""
    choices = {"A": "Propofol", "B": "Ketamine", "C": "Dantrolene", "D": "Succinylcholine"}
    out = []
    for size in (4000, 16000):
        text = unit * (size // len(unit))
        worst = 0.0
        for finish_reason in ("stop", "length"):
            started = time.process_time()
            extract_answer(choices, text, finish_reason=finish_reason)
            worst = max(worst, time.process_time() - started)
        out.append(worst)
    return out


def scan() -> int:
    """Print the units whose cost looks superlinear; how many."""
    units = sorted({atom + joiner for atom in SCAN_ATOMS for joiner in SCAN_JOINERS}
                   | {a + b + end for a in SCAN_ATOMS[:20] for b in SCAN_ATOMS[19:32] for end in ("", " ")})
    suspects = 0
    for unit in units:
        command = [sys.executable, __file__, "--time-unit", json.dumps(unit)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=SCAN_LIMIT_SECONDS, check=True)
        except subprocess.TimeoutExpired:
            suspects += 1
            print(f"  {unit!r}: over {SCAN_LIMIT_SECONDS} s")
            continue
        small, big = json.loads(done.stdout)
        if big > 0.05 or (small > 0.0005 and big / small > 7):
            suspects += 1
            print(f"  {unit!r}: {small * 1000:.1f} ms at 4 000 characters, {big * 1000:.1f} ms at 16 000")
    print(f"scan: {len(units)} units, {suspects} superlinear or slow")
    return suspects


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--corpus", type=Path, action="append", help="a corpus file (repeatable; default: both)")
    ap.add_argument("--snippet", type=int, default=160, help="characters of each missed reply to show")
    ap.add_argument("--speed", action="store_true", help="also time the grader over each corpus")
    ap.add_argument("--hostile", action="store_true", help="also time the grader on hostile 1 and 2 MiB replies")
    ap.add_argument("--scan", action="store_true", help="only look for hostile units of superlinear cost (minutes)")
    ap.add_argument("--time-unit", help=argparse.SUPPRESS)  # one unit of --scan, in its own process
    args = ap.parse_args(argv)
    if args.time_unit is not None:
        print(json.dumps(_time_unit(json.loads(args.time_unit))))
        return 0
    if args.scan:
        return 1 if scan() else 0
    try:
        declared = {d.path.resolve(): (d.part, d.model) for d in split(DATA)}
        written = (DATA / "grader_corpus.jsonl").resolve()
        paths = [p.resolve() for p in args.corpus] if args.corpus else [written, *declared]
        seed = _seed_pattern()
        results = [report(path, *declared.get(path, ("written" if path == written else "-", "-")), args.snippet,
                          args.speed, seed) for path in paths]
    except (InvalidInput, OSError) as exc:
        print(f"grader_report: {exc}", file=sys.stderr)
        return 2
    patterns = grading_patterns()
    print(f"grader patterns: {len(patterns)} distinct compiled objects at run time")
    if args.hostile:
        hostile()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
