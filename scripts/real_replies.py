"""Generate unlabelled replies from a real model server for the grader's real-reply corpus (a dev tool).

Each ``--batch LANGS/TEMPLATES/ITEMS/MAX_TOKENS/TEMPERATURE`` asks every selected (question, language,
template) once, e.g. ``zh/cot,paper/11:66/320/0`` or ``en/cot/0:66:2/120/0.7`` (items as a Python slice
of the sample's questions; a non-zero temperature gets a fixed seed per request). A small MAX_TOKENS
gives replies cut by the token limit. Each reply is one JSON line in the corpus format of
``tests/data/grader_corpus.jsonl`` without ``expected``: the label is added by a person who reads it.
Lines are written as replies arrive, each with its job number (``source.job``); running the same
command again skips the jobs already written.

    python scripts/real_replies.py --endpoint http://127.0.0.1:PORT/v1 --out replies.jsonl \\
        --batch en,zh/cot,paper/0:66/320/0
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from anesbench.dataset import load_dataset
from anesbench.dataset.model import Item
from anesbench.prompts import load_template

TEMPLATES = {"cot": "anesbench-cot", "paper": "anesbench-paper"}


def _batch(spec: str, items: list[Item], seed_base: int) -> list[dict[str, Any]]:
    langs, templates, span, max_tokens, temperature = spec.split("/")
    chosen = items[slice(*(int(part) if part else None for part in span.split(":")))]
    jobs = []
    for item in chosen:
        for lang in langs.split(","):
            for family in templates.split(","):
                seed = seed_base + len(jobs) if float(temperature) > 0 else None
                jobs.append({"item": item, "lang": lang, "family": family, "max_tokens": int(max_tokens),
                             "temperature": float(temperature), "seed": seed})
    return jobs


async def _ask(session: aiohttp.ClientSession, endpoint: str, job: dict[str, Any], number: int) -> dict[str, Any]:
    item, template = job["item"], TEMPLATES[job["family"]]
    body: dict[str, Any] = {"model": "real", "messages": load_template(template).render(item, job["lang"]),
                            "max_tokens": job["max_tokens"], "temperature": job["temperature"], "stream": False}
    if job["seed"] is not None:
        body["seed"] = job["seed"]
    for attempt in range(30):  # the server may still be loading (503)
        async with session.post(f"{endpoint}/chat/completions", json=body) as reply:
            if reply.status == 503 and attempt < 29:
                await asyncio.sleep(2)
                continue
            reply.raise_for_status()
            payload = await reply.json()
            break
    choice = payload["choices"][0]
    return {
        "lang": job["lang"],
        "tags": [f"real-{job['family']}-{job['lang']}"],
        "choices": item.texts[job["lang"]].options,
        "response": choice["message"].get("content") or "",
        "finish_reason": choice.get("finish_reason"),
        "source": {"job": number, "item": item.id, "template": template, "max_tokens": job["max_tokens"],
                   "temperature": job["temperature"], "seed": job["seed"],
                   "completion_tokens": payload.get("usage", {}).get("completion_tokens")},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--dataset", default="data/sample/anesbench-sample.jsonl")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch", action="append", required=True)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    items = list(load_dataset(args.dataset, ["en", "zh"]).items)
    jobs = [job for n, spec in enumerate(args.batch) for job in _batch(spec, items, args.seed + 1000 * n)]
    done = set()
    if args.out.exists():
        done = {json.loads(line)["source"]["job"] for line in args.out.open(encoding="utf-8") if line.strip()}
    gate = asyncio.Semaphore(args.concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3600)) as session:

        async def one(number: int, job: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                return await _ask(session, args.endpoint.rstrip("/"), job, number)

        tasks = [asyncio.ensure_future(one(n, job)) for n, job in enumerate(jobs) if n not in done]
        with args.out.open("a", encoding="utf-8") as out:
            for finished, task in enumerate(asyncio.as_completed(tasks), start=len(done) + 1):
                out.write(json.dumps(await task, ensure_ascii=False) + "\n")
                out.flush()
                print(f"{finished}/{len(jobs)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
