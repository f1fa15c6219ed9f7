"""Synthetic AnesBench-format datasets of any size, for benchmarks (not for accuracy: the text is filler).

    .venv/bin/python bench/synthetic.py --items 4427 --out /tmp/anesbench-4427.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from pathlib import Path

LETTERS = "ABCDEFGH"
DRUGS = ["propofol", "ketamine", "etomidate", "sevoflurane", "rocuronium", "sugammadex", "fentanyl", "remifentanil",
         "dexmedetomidine", "bupivacaine", "lidocaine", "ondansetron", "dantrolene", "neostigmine", "phenylephrine"]
DRUGS_ZH = ["丙泊酚", "氯胺酮", "依托咪酯", "七氟烷", "罗库溴铵", "舒更葡糖钠", "芬太尼", "瑞芬太尼", "右美托咪定",
            "布比卡因", "利多卡因", "昂丹司琼", "丹曲林", "新斯的明", "去氧肾上腺素"]


def record(n: int, rng: random.Random) -> dict[str, object]:
    choice_num = rng.choice((4, 4, 4, 5))
    picks = rng.sample(range(len(DRUGS)), choice_num)
    item: dict[str, object] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "choice_num": choice_num,
        "answer": LETTERS[rng.randrange(choice_num)],
        "level": rng.choice((1, 1, 2, 3)),
        "en_question": f"Case {n}: a patient undergoing surgery needs a drug; which agent best fits scenario {n}?",
    }
    for index, (letter, pick) in enumerate(zip(LETTERS, picks, strict=False)):
        item[f"en_{letter}"] = f"{DRUGS[pick].capitalize()} (regimen {n}.{index})"
    item["zh_question"] = f"病例{n}：一名手术患者需要用药；哪种药物最符合情景{n}？"
    for index, (letter, pick) in enumerate(zip(LETTERS, picks, strict=False)):
        item[f"zh_{letter}"] = f"{DRUGS_ZH[pick]}（方案{n}.{index}）"
    return item


def write(path: Path, items: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for n in range(items):
            out.write(json.dumps(record(n, rng), ensure_ascii=False) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4427)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(write(args.out, args.items, args.seed))


if __name__ == "__main__":
    main()
