"""Bytes per result with real-sized replies, and what pruning and a backup cost, on a store of many runs.

    nice .venv/bin/python bench/store_size.py --runs 12 --items 4427

Each run holds ``items`` x 2 languages results whose reply is 4 KB (UTF-8) of chain-of-thought: replies of
the real model from tests/data/grader_corpus_real.jsonl, shuffled and joined per result (real text,
as compressible as real text, never two results alike). Runs are spread over ``models`` models, one
series each, so ``prune --keep-last 1`` keeps one run per model. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import duckdb

from anesbench.store import ResultRow, RunRecord, Store
from anesbench.store.database import file_bytes

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "grader_corpus_real.jsonl"
REPLY_BYTES = 4096
BATCH = 4096


def replies(count: int, rng: random.Random) -> list[str]:
    texts = [json.loads(line)["response"] for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(part.encode()) for part in parts) < REPLY_BYTES:
            parts.append(rng.choice(texts))
        out.append("\n\n".join(parts).encode()[:REPLY_BYTES].decode(errors="ignore"))
    return out


def fill(store: Store, runs: int, models: int, items: int, rng: random.Random) -> int:
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(items)]
    pool = replies(2048, rng)
    written = 0
    for number in range(runs):
        run_id = f"run-{number:04d}"
        store.begin_run(RunRecord(
            id=run_id, model=f"model-{number % models}", endpoint="http://127.0.0.1:1/v1", dataset_name="anesbench",
            dataset_sha256="s", prompt_template="anesbench-cot", prompt_sha256="p", max_tokens=2048, temperature=0.0,
            samples=1, languages=["en", "zh"], harness_version="bench", config_hash="h", total=2 * items))
        batch: list[ResultRow] = []
        for index, item in enumerate(ids):
            for language in ("en", "zh"):
                pred = rng.choice("ABCD")
                batch.append(ResultRow(
                    run_id=run_id, item_id=item, language=language, sample=0, level=1 + index % 3, answer="A",
                    request_hash=f"{rng.getrandbits(256):064x}", response=rng.choice(pool) + f" {pred}",
                    finish_reason="stop", prompt_tokens=180, completion_tokens=1000, latency_s=rng.random() * 30,
                    attempts=1, pred=pred, method="final_phrase", correct=pred == "A", created_at=datetime.now()))
                if len(batch) == BATCH:
                    store.write_results(batch)
                    written, batch = written + len(batch), []
        store.write_results(batch)
        written += len(batch)
        store.finish_run(run_id, "completed")
    return written


def delete_and_checkpoint(path: str, run_ids: list[str]) -> int:
    """The file's size after deleting those runs' results with CHECKPOINT and VACUUM only (no copy)."""
    con = duckdb.connect(path)
    con.execute("DELETE FROM results WHERE run_id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])
    con.execute("CHECKPOINT")
    con.execute("VACUUM")
    con.execute("CHECKPOINT")
    con.close()
    return file_bytes(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--items", type=int, default=4427)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="anesbench-size-") as folder:
        path = str(Path(folder) / "store.duckdb")
        store = Store(path)
        started = time.perf_counter()
        results = fill(store, args.runs, args.models, args.items, random.Random(args.seed))
        store.close()
        fill_s = time.perf_counter() - started
        size = file_bytes(path)
        store = Store(path)
        board = store.leaderboard()
        started = time.perf_counter()
        backup = str(Path(folder) / "backup.duckdb")
        store.backup_to(backup)
        backup_s = time.perf_counter() - started
        checkpointed = delete_and_checkpoint(backup, store.prune_candidates(1, None))
        started = time.perf_counter()
        pruned = store.prune(keep_last=1, keep_aggregates=True)
        prune_s = time.perf_counter() - started
        assert store.leaderboard() == board, "the board changed with pruning"
        store.close()
        per_result = size / results
        print(json.dumps({
            "runs": args.runs, "results": results, "fill_s": round(fill_s, 1), "file_bytes": size,
            "bytes_per_result": round(per_result), "gb_per_1000_runs": round(per_result * 2 * 4427 * 1000 / 1e9, 1),
            "backup_s": round(backup_s, 1), "pruned_runs": len(pruned.run_ids), "prune_s": round(prune_s, 1),
            "backup_bytes": file_bytes(backup), "bytes_before_prune": pruned.bytes_before,
            "bytes_after_prune": pruned.bytes_after, "bytes_after_delete_checkpoint_vacuum_only": checkpointed,
        }))


if __name__ == "__main__":
    main()
