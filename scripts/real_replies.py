"""Generate unlabelled replies from a real model server for the grader's real-reply corpus (a dev tool).

Every (question, language, template) of the sample is asked once at ``--max-tokens``; ``--short N`` more
requests at ``--short-tokens`` (sampled at temperature 0.7 with a fixed seed) give replies cut by the
token limit. Each reply is written as one JSON line in the corpus format of
``tests/data/grader_corpus.jsonl`` minus ``expected``: the label is added by a person who reads it.

    python scripts/real_replies.py --endpoint http://127.0.0.1:PORT/v1 --out replies.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import aiohttp

from anesbench.dataset import load_dataset
from anesbench.prompts import load_template

TEMPLATES = {"anesbench-cot": "cot", "anesbench-paper": "paper"}


def _jobs(dataset: str, max_tokens: int, short: int, short_tokens: int) -> list[dict[str, Any]]:
    items = list(load_dataset(dataset, ["en", "zh"]).items)
    jobs = [
        {"item": item, "lang": lang, "template": name, "max_tokens": max_tokens, "temperature": 0.0, "seed": None}
        for item in items
        for lang in ("en", "zh")
        for name in TEMPLATES
    ]
    rng = random.Random(13)
    shorts = [
        dict(job, max_tokens=rng.randint(short_tokens // 2, short_tokens * 2), temperature=0.7, seed=1000 + n)
        for n, job in enumerate(rng.sample(jobs, short))
    ]
    every = max(1, len(jobs) // max(1, short))
    mixed: list[dict[str, Any]] = []
    for n, job in enumerate(jobs):  # short ones spread through the list, so any prefix has some
        mixed.append(job)
        if n % every == every - 1 and shorts:
            mixed.append(shorts.pop())
    return mixed + shorts


async def _ask(session: aiohttp.ClientSession, endpoint: str, job: dict[str, Any]) -> dict[str, Any]:
    item = job["item"]
    messages = load_template(job["template"]).render(item, job["lang"])
    body: dict[str, Any] = {"model": "real", "messages": messages, "max_tokens": job["max_tokens"],
                            "temperature": job["temperature"], "stream": False}
    if job["seed"] is not None:
        body["seed"] = job["seed"]
    async with session.post(f"{endpoint}/chat/completions", json=body) as reply:
        reply.raise_for_status()
        payload = await reply.json()
    choice = payload["choices"][0]
    family = TEMPLATES[job["template"]]
    return {
        "lang": job["lang"],
        "tags": [f"real-{family}-{job['lang']}"],
        "choices": item.texts[job["lang"]].options,
        "response": choice["message"].get("content") or "",
        "finish_reason": choice.get("finish_reason"),
        "source": {"item": item.id, "template": job["template"], "max_tokens": job["max_tokens"],
                   "temperature": job["temperature"], "seed": job["seed"],
                   "completion_tokens": payload.get("usage", {}).get("completion_tokens")},
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--dataset", default="data/sample/anesbench-sample.jsonl")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--short", type=int, default=48)
    parser.add_argument("--short-tokens", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    jobs = _jobs(args.dataset, args.max_tokens, args.short, args.short_tokens)
    done = 0
    if args.out.exists():  # resume: skip what an earlier run already wrote
        done = sum(1 for _ in args.out.open(encoding="utf-8"))
    todo = jobs[done:]
    gate = asyncio.Semaphore(args.concurrency)
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(job: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                return await _ask(session, args.endpoint.rstrip("/"), job)

        tasks = [asyncio.ensure_future(one(job)) for job in todo]
        with args.out.open("a", encoding="utf-8") as out:
            for n, task in enumerate(tasks, start=done + 1):  # in job order, so a restart resumes exactly
                out.write(json.dumps(await task, ensure_ascii=False) + "\n")
                out.flush()
                print(f"{n}/{len(jobs)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
