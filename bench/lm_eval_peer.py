"""lm-evaluation-harness as a peer in the benchmark: the same questions, the same stand-in, its own process.

lm-eval lives in its own virtualenv (``.cache/lm-eval-venv``, ``pip install "lm-eval[api]"``: no
PyTorch needed for API models) so that it never touches the project's dependencies. This writes a
task (a YAML file and the prompts as JSON Lines, rendered with our default template so that both
harnesses send the same text) and returns the command line; the benchmark times it.

    .venv/bin/python bench/lm_eval_peer.py --dataset /tmp/x.jsonl --languages en,zh --endpoint http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".cache" / "lm-eval-venv"
LM_EVAL = VENV / "bin" / "lm_eval"
REQUIREMENT = "lm-eval[api]"

TASK = """task: anesbench_peer
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<|never|>"]
  max_gen_toks: 2048
  temperature: 0.0
  do_sample: false
filter_list:
  - name: letter
    filter:
      - function: regex
        regex_pattern: "answer is \\\\(?([A-H])"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""


def install() -> Path:
    """Create the virtualenv and install lm-eval once; return the lm_eval executable."""
    if not LM_EVAL.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", REQUIREMENT], check=True)
    return LM_EVAL


def write_task(dataset: Path, languages: tuple[str, ...], folder: Path) -> Path:
    """The task folder for ``--include_path``: every question x language as one prompt."""
    from anesbench.dataset import load_dataset
    from anesbench.prompts import load_template

    template = load_template(None)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "anesbench_peer.jsonl"
    with data.open("w", encoding="utf-8") as out:
        for item in load_dataset(dataset, languages).items:
            for language in languages:
                prompt = template.render(item, language)[-1]["content"]
                out.write(json.dumps({"prompt": prompt, "answer": item.answer}, ensure_ascii=False) + "\n")
    (folder / "anesbench_peer.yaml").write_text(TASK.format(data=data), encoding="utf-8")
    return folder


def command(endpoint: str, task_dir: Path, concurrency: int = 256) -> list[str]:
    args = ",".join([
        "model=bench", f"base_url={endpoint.rstrip('/')}/chat/completions", f"num_concurrent={concurrency}",
        "max_retries=3", "tokenizer_backend=None", "tokenized_requests=False", "timeout=600",
    ])
    return [str(LM_EVAL), "--model", "local-chat-completions", "--model_args", args, "--tasks", "anesbench_peer",
            "--include_path", str(task_dir), "--apply_chat_template", "--batch_size", "1"]


def environment(cache: Path) -> dict[str, str]:
    """Offline: the data set is a local file, nothing is fetched from a hub."""
    return {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(cache),
            "TOKENIZERS_PARALLELISM": "false"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--languages", default="en")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--work", type=Path, default=ROOT / ".cache" / "lm-eval-task")
    args = parser.parse_args()
    install()
    folder = write_task(args.dataset, tuple(args.languages.split(",")), args.work)
    subprocess.run(command(args.endpoint, folder), check=True, env=environment(args.work / "hf"))


if __name__ == "__main__":
    main()
