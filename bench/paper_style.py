"""The AnesBench paper's way of driving a server, for comparison: a thread pool with a synchronous client.

Each worker thread sends one chat request at a time with its own synchronous client (httpx, like the
OpenAI SDK the paper's script uses), extracts a letter with a regex, and the results are written as one JSON file at the end.

    .venv/bin/python bench/paper_style.py --endpoint URL --dataset FILE --workers 16 --out results.json
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from anesbench.dataset import load_dataset
from anesbench.prompts import load_template

ANSWER = re.compile(r"answer is \(?([A-H])", re.IGNORECASE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--languages", default="en")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    languages = tuple(args.languages.split(","))
    dataset = load_dataset(args.dataset, languages)
    template = load_template()
    jobs = [(item, language) for item in dataset.items for language in languages]
    local = threading.local()

    def ask(job: tuple) -> dict:
        # One client per worker thread: a single client shared by hundreds of threads was seen to hang.
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=600)
        item, language = job
        body = {"model": "paper", "messages": template.render(item, language), "max_tokens": 2048,
                "temperature": 0}
        started = time.perf_counter()
        reply = client.post(f"{args.endpoint}/chat/completions", json=body).json()
        text = reply["choices"][0]["message"]["content"] or ""
        match = ANSWER.search(text)
        return {"id": item.id, "language": language, "response": text, "pred": match.group(1) if match else None,
                "latency": time.perf_counter() - started}

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(ask, jobs))
    args.out.write_text(json.dumps(results, ensure_ascii=False), encoding="utf-8")
    print(len(results))


if __name__ == "__main__":
    main()
