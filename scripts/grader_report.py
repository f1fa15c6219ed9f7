"""Grade the hand-labelled reply corpus and print how the answer grader does.

Prints accuracy overall, per language and per tag, the confusion counts (wrong letter, missed
answer, false answer where the label is "no answer"), the methods used, and each failing case
with a snippet of its reply.

    .venv/bin/python scripts/grader_report.py [--corpus tests/data/grader_corpus.jsonl] [--snippet 160]

Exits 1 when the corpus gate fails (accuracy below 97 % or any false answer), else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from anesbench.grading import Extraction, extract_answer

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "grader_corpus.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def outcome(expected: str | None, got: str | None) -> str:
    """"ok", "wrong_letter" (two different letters), "missed" (label a letter, got None) or
    "false_answer" (label None, got a letter: a guess)."""
    if expected == got:
        return "ok"
    if expected is None:
        return "false_answer"
    if got is None:
        return "missed"
    return "wrong_letter"


def _pct(ok: int, n: int) -> str:
    return f"{ok}/{n} = {ok / n:.3f}" if n else "0/0"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--snippet", type=int, default=160, help="characters of each failing reply to show")
    args = ap.parse_args(argv)

    cases = load(args.corpus)
    by_lang: dict[str, list[bool]] = defaultdict(list)
    by_tag: dict[str, list[bool]] = defaultdict(list)
    confusion: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    failures: list[tuple[dict[str, Any], Extraction, str]] = []
    for case in cases:
        got = extract_answer(case["choices"], case["response"], finish_reason=case.get("finish_reason"))
        kind = outcome(case["expected"], got.pred)
        confusion[kind] += 1
        methods[got.method] += 1
        ok = kind == "ok"
        by_lang[case["lang"]].append(ok)
        for tag in case["tags"]:
            by_tag[tag].append(ok)
        if not ok:
            failures.append((case, got, kind))

    n = len(cases)
    print(f"corpus: {args.corpus} ({n} replies)")
    print(f"accuracy overall: {_pct(confusion['ok'], n)}")
    print("\nper language:")
    for lang, oks in sorted(by_lang.items()):
        print(f"  {lang:<6} {_pct(sum(oks), len(oks))}")
    print("\nper tag:")
    for tag, oks in sorted(by_tag.items(), key=lambda kv: (sum(kv[1]) / len(kv[1]), kv[0])):
        print(f"  {tag:<20} {_pct(sum(oks), len(oks))}")
    print("\nconfusion:")
    for kind in ("ok", "wrong_letter", "missed", "false_answer"):
        print(f"  {kind:<13} {confusion[kind]}")
    print("\nmethods:")
    for method, count in methods.most_common():
        print(f"  {method:<20} {count}")

    rounds = timeit.repeat(
        lambda: [extract_answer(c["choices"], c["response"], finish_reason=c.get("finish_reason")) for c in cases],
        number=5, repeat=5,
    )
    per_reply = min(rounds) / (5 * n)
    print(f"\nspeed: {per_reply * 1e6:.1f} µs per reply (mean over the corpus, best of 5 rounds)")

    if failures:
        print(f"\nfailing cases ({len(failures)}):")
        for case, got, kind in failures:
            snippet = case["response"].replace("\n", " ⏎ ")
            if len(snippet) > args.snippet:
                snippet = "…" + snippet[-args.snippet:]
            print(f"  {case['id']} [{case['lang']}] {kind}: expected {case['expected']!r}, got {got.pred!r} "
                  f"({got.method}); tags={','.join(case['tags'])}\n      {snippet}")
    # the same gate as tests/unit/test_grading_corpus.py: >= 97 % and never a guess
    return 0 if confusion["ok"] / n >= 0.97 and not confusion["false_answer"] else 1


if __name__ == "__main__":
    sys.exit(main())
