"""Logprob scoring on a REAL base model: Gemma 3 270M on llama.cpp's own server (xllamacpp).

The letter probabilities the run stores are checked against the server's native ``/completion``
(``n_probs``), computed here from its raw top list. Both are exact only when nothing else shapes the
numbers: the server computes every prompt whole (``--no-prompt-cache``: a reused prefix shifts them) and
the run sends one request at a time (two batched together shift them too). And the same model through the generative path
(with elicitation) is compared with the logprob run. The model's accuracy is reported, not asserted.

Needs ``make realmodel`` (xllamacpp and the cached GGUF).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from anesbench_testkit.realmodel.model import GEMMA3
from tests.conftest import PYTHON, SAMPLE, check_letter_distributions
from tests.procs import ROOT, Proc, run_cli, start

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("ANESBENCH_MODEL_CACHE") or ROOT / ".cache" / "models")
TEMPLATE = ROOT / "services" / "anesbench" / "prompts" / "templates" / "anesbench-logprob.json"
LIMIT = "12"
RUN_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def gemma() -> Iterator[str]:
    """The server's root URL (``/v1`` is the OpenAI base)."""
    missing = [name for name, present in (("xllamacpp", importlib.util.find_spec("xllamacpp") is not None),
                                          (str(CACHE / GEMMA3.file), (CACHE / GEMMA3.file).is_file())) if not present]
    if missing:
        message = f"real model tool not set up ({', '.join(missing)} missing): run `make realmodel`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    proc: Proc = start([PYTHON, "-m", "anesbench_testkit.realmodel", "serve", "--model", GEMMA3.alias, "--slots", "2",
                        "--slot-context", "1024", "--threads", os.environ.get("ANESBENCH_REALMODEL_THREADS", "1"),
                        "--port", "0", "--no-prompt-cache"], env={"ANESBENCH_MODEL_CACHE": str(CACHE)}, timeout=240.0)
    yield proc.address
    proc.stop(timeout=30)


@pytest.fixture(scope="module")
def logprob_run(gemma: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("lp") / "real.duckdb"
    result = run_cli("run", "--endpoint", f"{gemma}/v1", "--model", GEMMA3.alias, "--dataset", str(SAMPLE), "--db",
                     str(db), "--scoring", "logprobs", "--limit", LIMIT, "--languages", "en,zh", "--run-id", "gemma-lp",
                     "--concurrency", "1", "--no-progress", timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    return db


def _export(db: Path, run_id: str) -> list[dict]:
    exported = run_cli("export", "--db", str(db), "--run", run_id)
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


def _items() -> dict[str, dict]:
    return {record["id"]: record for record in map(json.loads, SAMPLE.read_text(encoding="utf-8").splitlines())}


def test_every_result_has_a_distribution_over_its_letters_and_the_board_its_calibration(logprob_run: Path) -> None:
    results = _export(logprob_run, "gemma-lp")
    check_letter_distributions(results, 2 * int(LIMIT))
    board = json.loads(run_cli("leaderboard", "--db", str(logprob_run), "--format", "json").stdout)
    assert {row["scoring"] for row in board} == {"logprobs"}
    print({row["language"]: f"{row['correct']}/{row['total']}" for row in board if row["level"] == "overall"})
    for row in (row for row in board if row["level"] == "overall"):  # calibration, worked out from the export
        probs = [(json.loads(r["letter_probs"]), r["gold"]) for r in results if r["language"] == row["language"]]
        brier = sum(sum((p - (letter == answer)) ** 2 for letter, p in dist.items()) for dist, answer in probs)
        assert row["brier"] == pytest.approx(brier / len(probs), abs=1e-9) and 0 <= row["ece"] <= 1


def _native_letter_probs(root: str, item: dict, language: str) -> dict[str, float]:
    """The item's letter probabilities from llama.cpp's own ``/completion``, summed over the spellings here."""
    section = json.loads(TEMPLATE.read_text(encoding="utf-8"))[language]["user"]
    letters = "ABCDEFGH"[:item["choice_num"]]
    prefix = "zh" if f"zh_{letters[0]}" in item else "cn"
    prefix = "en" if language == "en" else prefix
    question = item[f"{prefix}_question"]
    options = "\n".join(f"{letter}. {item[f'{prefix}_{letter}']}" for letter in letters)
    prompt = section.replace("{question}", question).replace("{options}", options)
    body = json.dumps({"prompt": prompt, "n_predict": 1, "temperature": 0, "n_probs": 20}).encode()
    request = urllib.request.Request(f"{root}/completion", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        top = json.loads(reply.read())["completion_probabilities"][0]["top_logprobs"]
    mass = {letter: sum(math.exp(entry["logprob"]) for entry in top if entry["token"].strip() == letter)
            for letter in letters}
    assert all(mass.values()), f"a letter of item {item['id']} is not in the native top 20: pick another item"
    return {letter: value / sum(mass.values()) for letter, value in mass.items()}


def test_two_items_match_the_servers_native_probabilities(gemma: str, logprob_run: Path) -> None:
    items = _items()
    checked = [row for row in _export(logprob_run, "gemma-lp") if row["letter_probs_complete"]][:2]
    assert len(checked) == 2
    for row in checked:
        native = _native_letter_probs(gemma, items[row["item_id"]], row["language"])
        assert json.loads(row["letter_probs"]) == pytest.approx(native, abs=1e-4)


def test_the_generative_run_with_elicitation_compares_with_the_logprob_run(gemma: str, logprob_run: Path) -> None:
    result = run_cli("run", "--endpoint", f"{gemma}/v1", "--model", GEMMA3.alias, "--dataset", str(SAMPLE), "--db",
                     str(logprob_run), "--limit", LIMIT, "--languages", "en,zh", "--max-tokens", "16",
                     "--run-id", "gemma-gen", "--no-progress", timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    compared = run_cli("compare", "gemma-lp", "gemma-gen", "--db", str(logprob_run))
    assert compared.returncode == 0, compared.stderr
    assert "McNemar p" in compared.stdout and "A - B" in compared.stdout
    print(compared.stdout)
    cells = json.loads(run_cli("compare", "gemma-lp", "gemma-gen", "--db", str(logprob_run), "--format",
                               "json").stdout)["cells"]
    overall = next(cell for cell in cells if (cell["language"], cell["level"]) == ("all", "overall"))
    assert overall["pairs"] == 2 * int(LIMIT) and 0 <= overall["p_value"] <= 1
    board = json.loads(run_cli("leaderboard", "--db", str(logprob_run), "--format", "json").stdout)
    assert {row["scoring"] for row in board} == {"logprobs", "generate"}
    print([(row["run_id"], row["language"], f"{row['correct']}/{row['total']}", f"elicited {row['elicited']}")
           for row in board if row["level"] == "overall"])
