"""`anesbench run` against a REAL model server: llama.cpp's own HTTP server (xllamacpp) on a 0.5B model.

What the stand-in cannot show: token counts and finish reasons as a real server reports them (a reply cut
at ``--max-tokens`` says ``length``), its ``/health``, ``/v1/models`` and ``/props`` answers, several
samples per question, and a run that survives the server being killed with SIGKILL mid-run.
The model's answers are not checked: a 0.5B coding model's accuracy means nothing.

Needs ``make realmodel`` (xllamacpp and the cached GGUF); ``make test`` does it first.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from anesbench.engine.config import RunConfig
from anesbench.engine.runner import endpoint_limiters
from anesbench.inference.sizing import headroom, server_slots
from anesbench_testkit.realmodel.model import QWEN
from tests.conftest import PYTHON, SAMPLE
from tests.procs import CLI, ROOT, Proc, run_cli, start

pytestmark = pytest.mark.slow

CACHE = Path(os.environ.get("ANESBENCH_MODEL_CACHE") or ROOT / ".cache" / "models")
MAX_TOKENS = 16
START_TIMEOUT = 240.0
RUN_TIMEOUT = 300.0
# One llama.cpp thread: on a loaded CI machine two threads wait for each other at every step.
THREADS = os.environ.get("ANESBENCH_REALMODEL_THREADS", "1")


def _require_real_model() -> None:
    missing = []
    if importlib.util.find_spec("xllamacpp") is None:
        missing.append("xllamacpp")
    if not (CACHE / QWEN.file).is_file():
        missing.append(str(CACHE / QWEN.file))
    if missing:
        message = f"real model tool not set up ({', '.join(missing)} missing): run `make realmodel`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class RealServer:
    """``python -m anesbench_testkit.realmodel serve`` as a process; ``base`` is http://127.0.0.1:PORT."""

    def __init__(self, slots: int, port: int = 0) -> None:
        self.log = tempfile.NamedTemporaryFile(prefix="realmodel-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: Proc = start(
            [PYTHON, "-m", "anesbench_testkit.realmodel", "serve", "--slots", str(slots), "--slot-context", "1024",
             "--threads", THREADS, "--port", str(port)],
            env={"ANESBENCH_MODEL_CACHE": str(CACHE)}, timeout=START_TIMEOUT, stderr=self.log,
        )
        self.base = self.proc.address

    @property
    def v1(self) -> str:
        return f"{self.base}/v1"

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.base}{path}", timeout=30) as reply:
            return reply.read()

    def metric(self, name: str) -> float:
        text = self.get("/metrics").decode()
        found = re.search(rf"^llamacpp:{name} ([0-9.e+]+)$", text, re.MULTILINE)
        assert found, f"no llamacpp:{name} in /metrics"
        return float(found.group(1))

    def finished_requests(self) -> int:
        return Path(self.log.name).read_text(errors="replace").count("stop processing")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.proc.stop(sig, timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def real() -> Iterator[RealServer]:
    _require_real_model()
    server = RealServer(slots=2)
    yield server
    server.stop()
    os.unlink(server.log.name)


def _few(tmp_path: Path, count: int) -> Path:
    path = tmp_path / f"sample-{count}.jsonl"
    path.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:count]), encoding="utf-8")
    return path


def _run_args(endpoint: str, dataset: Path, db: Path, *extra: str) -> list[str]:
    return ["run", "--endpoint", endpoint, "--model", QWEN.alias, "--dataset", str(dataset), "--db", str(db),
            "--max-tokens", str(MAX_TOKENS), "--no-progress", *extra]


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_real_server_health_models_and_slots(real: RealServer) -> None:
    assert json.loads(real.get("/health")) == {"status": "ok"}
    models = json.loads(real.get("/v1/models"))
    assert [m["id"] for m in models["data"]] == [QWEN.alias]
    assert json.loads(real.get("/props"))["total_slots"] == 2

    async def sized() -> tuple[int | None, int]:
        config = RunConfig(endpoints=(real.v1,), model=QWEN.alias, languages=("en",))
        (limiter,) = await endpoint_limiters(config, None)
        return await server_slots(real.v1), limiter.limit

    import asyncio

    # llama.cpp has no /get_server_info: the sizing falls back to /props and keeps its 2 slots busy.
    assert asyncio.run(sized()) == (2, 2 + headroom(2))


def test_usage_and_finish_reasons_come_from_the_real_replies(real: RealServer, tmp_path: Path) -> None:
    db = tmp_path / "real.duckdb"
    predicted_before = real.metric("tokens_predicted_total")
    result = run_cli(*_run_args(real.v1, _few(tmp_path, 1), db, "--languages", "en,zh",
                                "--prompt-template", "anesbench-paper", "--run-id", "usage"), timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    rows = _rows(db, "SELECT finish_reason, prompt_tokens, completion_tokens, pred_rules, method_rules, error, "
                     "coalesce(elicitation_completion_tokens, 0) FROM results")
    assert len(rows) == 2 and all(row[5] is None for row in rows)
    assert {reason for reason, *_ in rows} <= {"stop", "length"}
    assert any(reason == "length" for reason, *_ in rows), "a 0.5B model's step-by-step reply fits in 16 tokens?"
    for reason, prompt, completion, pred, method, _, _ in rows:
        assert prompt is not None and prompt > 50  # the template and question, as the server tokenised them
        assert completion is not None and 1 <= completion <= MAX_TOKENS
        if reason == "length":
            assert completion == MAX_TOKENS  # cut exactly at --max-tokens
            if pred is None:
                assert method == "none_truncated"
        else:
            assert completion < MAX_TOKENS
    # The stored counts (replies and follow-ups) are the server's own: they add up to what it says it generated.
    assert sum(row[2] + row[6] for row in rows) == real.metric("tokens_predicted_total") - predicted_before


def test_the_follow_up_turn_is_one_letter_by_grammar_on_the_real_server(real: RealServer, tmp_path: Path) -> None:
    """16 new tokens cut most chain-of-thought replies short: the follow-up turn decides those, by GBNF."""
    db = tmp_path / "elicit.duckdb"
    common = ("--limit", "4", "--languages", "en,zh", "--prompt-template", "anesbench-paper")
    result = run_cli(*_run_args(real.v1, SAMPLE, db, *common, "--run-id", "asked"), timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert _rows(db, "SELECT elicit, elicit_constraint FROM runs") == [("unanswered", "grammar")]
    rows = _rows(db, "SELECT item_id, language, pred, pred_rules, method, error, elicitation, elicitation_response "
                     "FROM results ORDER BY item_id, language")
    assert len(rows) == 8
    assert all(pred is not None or error is not None for _, _, pred, _, _, error, _, _ in rows)
    asked = [row for row in rows if row[4] == "elicited"]
    assert asked, "no reply cut at 16 tokens left without an answer?"
    for *_, pred, rules, _, _, state, reply in asked:
        assert state == "done" and rules is None
        assert reply == pred and reply in "ABCDE"  # exactly one letter, nothing around it: the grammar held
    board = json.loads(run_cli("leaderboard", "--db", str(db), "--run", "asked", "--format", "json").stdout)
    overall = [row for row in board if row["level"] == "overall"]
    assert sum(row["elicited"] for row in overall) == len(asked)
    assert all(0 <= row["accuracy_strict"] <= row["accuracy"] for row in overall)
    # The same replies with --elicit off: the rules' own verdicts, nothing asked again.
    off = run_cli(*_run_args(real.v1, SAMPLE, db, *common, "--run-id", "off", "--elicit", "off"), timeout=RUN_TIMEOUT)
    assert off.returncode == 0, off.stderr
    pairs = _rows(db, "SELECT a.response = b.response, a.pred, b.pred_rules, a.elicitation FROM results a JOIN "
                      "results b USING (item_id, language, sample) WHERE a.run_id = 'off' AND b.run_id = 'asked'")
    same = [(pred, rules, state) for equal, pred, rules, state in pairs if equal]
    assert len(same) >= 6, "greedy decoding on one server should repeat its replies"
    assert all(pred == rules and state is None for pred, rules, state in same)


def test_two_samples_per_question(real: RealServer, tmp_path: Path) -> None:
    db = tmp_path / "samples.duckdb"
    result = run_cli(*_run_args(real.v1, _few(tmp_path, 1), db, "--languages", "en", "--samples", "2",
                                "--temperature", "0.8", "--max-attempts", "2", "--run-id", "s2"),
                     timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    rows = _rows(db, "SELECT item_id, sample, completion_tokens, finish_reason, error FROM results ORDER BY ALL")
    assert [(sample, error) for _, sample, _, _, error in rows] == [(0, None), (1, None)]
    assert all(tokens and 1 <= tokens <= MAX_TOKENS and reason in ("stop", "length") for _, _, tokens, reason, _ in rows)


@pytest.mark.timeout(2 * RUN_TIMEOUT)
def test_server_killed_mid_run_then_the_same_run_id_resumes(tmp_path: Path) -> None:
    _require_real_model()
    db = tmp_path / "kill.duckdb"
    dataset = _few(tmp_path, 2)
    total = 2 * 2
    server = RealServer(slots=1)  # one request at a time: some are done, the rest not, when it is killed
    # --elicit off: what was generated is the replies alone, so the token counts below are exact
    args = _run_args(server.v1, dataset, db, "--languages", "en,zh", "--run-id", "k", "--max-attempts", "2",
                     "--elicit", "off")
    victim = subprocess.Popen([*CLI, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while server.finished_requests() < 1 and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)  # the results of finished requests reach the store within 0.1 s
        server.stop(signal.SIGKILL)
        first = victim.wait(RUN_TIMEOUT)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    assert first != 0, "the run cannot have finished: the server was killed with requests in flight"
    done = _rows(db, "SELECT item_id, language, sample, response, created_at FROM results WHERE error IS NULL")
    assert 1 <= len(done) < total

    again = RealServer(slots=1)
    try:
        predicted_before = again.metric("tokens_predicted_total")
        resumed = run_cli(*_run_args(again.v1, dataset, db, "--languages", "en,zh", "--run-id", "k", "--elicit", "off"),
                          timeout=RUN_TIMEOUT)
        assert resumed.returncode == 0, resumed.stderr
        keys = _rows(db, "SELECT item_id, language, sample FROM results WHERE error IS NULL ORDER BY ALL")
        expected = sorted((line["id"], lang, 0) for line in map(json.loads, dataset.read_text().splitlines())
                          for lang in ("en", "zh"))
        assert keys == expected and _rows(db, "SELECT count(*) FROM results") == [(total,)]
        # What was answered before the kill is kept as it was, and only the rest was asked again.
        assert set(done) <= set(_rows(db, "SELECT item_id, language, sample, response, created_at FROM results"))
        before = {(item, lang) for item, lang, *_ in done}
        later = [tokens for item, lang, tokens in _rows(db, "SELECT item_id, language, completion_tokens FROM results")
                 if (item, lang) not in before]
        assert sum(later) == again.metric("tokens_predicted_total") - predicted_before
        assert _rows(db, "SELECT status FROM runs") == [("completed",)]
    finally:
        again.stop()
        for log in (server.log.name, again.log.name):
            os.unlink(log)
