"""Turn ``anesbench export --format jsonl`` files of real-model runs into labelled-corpus lines.

Each ``--export TEMPLATE=FILE`` is the export of one run of ``--model`` under that prompt template.
Every reply becomes one line in the format of ``tests/data/grader_corpus_real.jsonl`` (``id``,
``lang``, ``tags``, ``choices``, ``response``, ``finish_reason``, ``expected``) plus ``source``
(model, template, language, item, completion tokens). The grader's own fields (``predicted``,
``method``, ``outcome``, ``correct``) are dropped: labels come from reading the reply, never from the
grader. A reply whose reasoning the server returned apart keeps it in front as ``<think>…</think>``,
as the model produced it. Results that are stored errors (no reply) are left out and counted.

Labels are kept across runs: a line of ``--out`` whose model, template, language, item and response
are unchanged keeps its ``expected`` and tags; any other reply is written with ``expected: null`` and
the tag ``unlabelled`` until a person reads it and labels it.

    python scripts/collect_replies.py --dataset data/sample/anesbench-sample.jsonl \\
        --model smollm2-135m-instruct --out tests/data/real/smollm2-135m-instruct.jsonl \\
        --export anesbench-cot=cot.jsonl --export anesbench-paper=paper.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from anesbench.dataset import load_dataset
from anesbench.dataset.model import Item
from anesbench.errors import InvalidInput

UNLABELLED = "unlabelled"
SHORT_NAMES = {"anesbench-cot": "cot", "anesbench-paper": "paper"}
Key = tuple[str, str, str, str, str]  # model, template, language, item, response


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path}:{number}: not JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise InvalidInput(f"{path}:{number}: not a JSON object")
                yield number, row


def _field(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise InvalidInput(f"{where}: field {name!r} missing (is this an `anesbench export --format jsonl` file?)")
    return row[name]


def _reply(row: dict[str, Any], where: str) -> str:
    response = _field(row, "response", where)
    reasoning = _field(row, "reasoning", where)
    if not isinstance(response, str):
        raise InvalidInput(f"{where}: field 'response': text expected")
    return f"<think>{reasoning}</think>{response}" if reasoning else response


def convert(
    exports: list[tuple[str, Path]], items: dict[str, Item], model: str,
    labelled: dict[Key, dict[str, Any]],
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The corpus lines, in export order, and counts of what was written and left out."""
    lines: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for template, path in exports:
        for number, row in _rows(path):
            where = f"{path}:{number}"
            if _field(row, "error", where) is not None and _field(row, "response", where) is None:
                counts["errors left out"] += 1
                continue
            item_id, lang = _field(row, "item_id", where), _field(row, "language", where)
            if item_id not in items:
                raise InvalidInput(f"{where}: field 'item_id': {item_id!r} is not in the dataset")
            finish = _field(row, "finish_reason", where)
            if finish not in ("stop", "length"):
                raise InvalidInput(f"{where}: field 'finish_reason': 'stop' or 'length' expected, not {finish!r}")
            response = _reply(row, where)
            previous = labelled.get((model, template, lang, item_id, response))
            family = f"real-{SHORT_NAMES.get(template, template)}-{lang}"
            tags = previous["tags"] if previous else [family, UNLABELLED]
            counts["kept labels" if previous else "to label"] += 1
            lines.append({
                "id": f"{model}-{len(lines) + 1:03d}", "lang": lang, "tags": tags,
                "choices": dict(items[item_id].texts[lang].options), "response": response, "finish_reason": finish,
                "expected": previous["expected"] if previous else None,
                "source": {"model": model, "template": template, "language": lang, "item": item_id,
                           "completion_tokens": _field(row, "completion_tokens", where)},
            })
    return lines, counts


def read_labels(path: Path) -> dict[Key, dict[str, Any]]:
    """The labelled lines of an earlier ``--out``, by what identifies their reply."""
    if not path.is_file():
        return {}
    found = {}
    for _, line in _rows(path):
        source = line["source"]
        if UNLABELLED not in line["tags"]:
            key = (source["model"], source["template"], source["language"], source["item"], line["response"])
            found[key] = line
    return found


def _export_arg(text: str) -> tuple[str, Path]:
    template, sep, path = text.partition("=")
    if not sep or not template or not path:
        raise argparse.ArgumentTypeError(f"TEMPLATE=FILE expected, not {text!r}")
    return template, Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="The dataset the runs answered.")
    parser.add_argument("--model", required=True, help="The model name (source.model; ids are MODEL-001, ...).")
    parser.add_argument("--export", type=_export_arg, action="append", required=True, metavar="TEMPLATE=FILE")
    parser.add_argument("--out", type=Path, required=True, help="Corpus file; its labels are kept.")
    args = parser.parse_args(argv)
    try:
        dataset = load_dataset(args.dataset, ["en", "zh"])
        items = {item.id: item for item in dataset.items}
        lines, counts = convert(args.export, items, args.model, read_labels(args.out))
    except (InvalidInput, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    print(f"{args.out}: {len(lines)} replies; " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
