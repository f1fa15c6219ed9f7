"""``python -m anesbench_testkit.standin``: run the OpenAI-compatible stand-in server (test/bench tool)."""

from __future__ import annotations

import json
import os
import sys

import click

from anesbench import event_loop
from anesbench_testkit import until_stopped
from anesbench_testkit.standin.answers import AnswerKey
from anesbench_testkit.standin.constrained import FLAVOURS, UNCONSTRAINED_REPLIES
from anesbench_testkit.standin.faults import FAULT_KINDS, LATENCY_DISTS, FaultPlan
from anesbench_testkit.standin.server import StandinServer, start


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="Service time per request.")
@click.option("--jitter-ms", type=float, default=0.0, show_default=True, help="Uniform ± jitter on the service time.")
@click.option("--latency-dist", type=click.Choice(LATENCY_DISTS), default="uniform", show_default=True,
              help="lognormal: heavy-tailed service times with mean --latency-ms, per question and model.")
@click.option("--sigma", type=float, default=1.0, show_default=True, help="lognormal: spread across questions.")
@click.option("--model-sigma", type=float, default=0.3, show_default=True,
              help="lognormal: spread of one model's (and sample's) lengths around the question's.")
@click.option("--latency-cap", type=float, default=25.0, show_default=True,
              help="lognormal: longest service time, in multiples of the mean.")
@click.option("--accept-n/--refuse-n", default=True, show_default=True,
              help="Answer n > 1 choices per request, or refuse it with HTTP 400.")
@click.option("--slots", type=int, default=0, show_default=True, help="Decode slots; 0 = unlimited.")
@click.option("--report-slots/--hide-slots", default=True, show_default=True,
              help="Answer SGLang's /get_server_info with the slots, or 404 like vLLM and hosted APIs.")
@click.option("--answer-key", type=click.Path(exists=True, dir_okay=False), help="AnesBench file with answers.")
@click.option("--accuracy", default="0.8,0.65,0.5", show_default=True, help="P(correct) for levels 1,2,3.")
@click.option("--fail-first", type=int, default=0, help="Fail the first N attempts of every distinct request.")
@click.option("--fail-kind", type=click.Choice(FAULT_KINDS), default="503")
@click.option("--fail-every", type=int, default=0, help="Fail every Nth attempt, in arrival order, with --fail-kind.")
@click.option("--fault-rate", type=float, default=0.0, help="Share of attempts that fail at random.")
@click.option("--fault-kinds", default="503,429,reset", show_default=True)
@click.option("--retry-after", type=float, default=None, help="Retry-After seconds sent with 429/503.")
@click.option("--seed", type=int, default=0)
@click.option("--hang-seconds", type=float, default=30.0, show_default=True, help="How long a 'hang' fault lasts.")
@click.option("--unanswerable-rate", type=float, default=0.03, show_default=True,
              help="Share of replies that refuse or are truncated.")
@click.option("--require-api-key-env", default=None, help="Name of an env var holding the key clients must send.")
@click.option("--served-model", "served_models", multiple=True,
              help="Model name GET /v1/models lists (repeat or comma-separate; default: standin).")
@click.option("--not-ready-seconds", type=float, default=0.0, show_default=True,
              help="A cold start: answer 503 on /health, /v1/models and chat for this long.")
@click.option("--huge-reply-rate", type=float, default=0.0, show_default=True,
              help="Share of replies padded to --huge-reply-bytes (deterministic per request).")
@click.option("--huge-reply-bytes", type=int, default=2 << 20, show_default=True)
@click.option("--constraints", type=click.Choice(FLAVOURS), default="sglang", show_default=True,
              help="Which engine's constrained decoding to play for follow-up turns (none: ignore every constraint).")
@click.option("--unconstrained-reply", type=click.Choice(UNCONSTRAINED_REPLIES), default="terse", show_default=True,
              help="A follow-up without an applied constraint: a bare letter, or a chatty sentence.")
@click.option("--change-mind-rate", type=float, default=0.0, show_default=True,
              help="Share of follow-ups whose final letter differs from the one the reply committed to.")
@click.option("--follow-up-fault", type=click.Choice(FAULT_KINDS), default=None,
              help="Fail every follow-up attempt with this fault (the replies themselves are served).")
def main(
    host: str, port: int, latency_ms: float, jitter_ms: float, latency_dist: str, sigma: float, model_sigma: float,
    latency_cap: float, accept_n: bool, slots: int, report_slots: bool, answer_key: str | None, accuracy: str,
    fail_first: int, fail_kind: str, fail_every: int, fault_rate: float, fault_kinds: str, retry_after: float | None, seed: int,
    hang_seconds: float, unanswerable_rate: float, require_api_key_env: str | None, served_models: tuple[str, ...],
    not_ready_seconds: float, huge_reply_rate: float, huge_reply_bytes: int, constraints: str,
    unconstrained_reply: str, change_mind_rate: float, follow_up_fault: str | None,
) -> None:
    """Serve a stand-in OpenAI-compatible model. It checks the pipeline; it is not a model."""
    plan = FaultPlan()
    try:
        levels = [float(p) for p in accuracy.split(",")]
        plan.update({
            "latency_ms": latency_ms, "jitter_ms": jitter_ms, "latency_dist": latency_dist, "sigma": sigma,
            "model_sigma": model_sigma, "latency_cap": latency_cap, "accept_n": accept_n, "slots": slots,
            "report_slots": report_slots,
            "fail_first": fail_first, "fail_every": fail_every,
            "fail_kind": fail_kind, "fault_rate": fault_rate, "fault_kinds": fault_kinds.split(","),
            "retry_after": retry_after, "accuracy": dict(zip((1, 2, 3), levels, strict=True)),
            "hang_seconds": hang_seconds, "unanswerable_rate": unanswerable_rate,
            "api_key": os.environ.get(require_api_key_env) if require_api_key_env else None,
            "not_ready_seconds": not_ready_seconds, "huge_reply_rate": huge_reply_rate,
            "huge_reply_bytes": huge_reply_bytes, "constraints": constraints,
            "unconstrained_reply": unconstrained_reply, "change_mind_rate": change_mind_rate,
            "follow_up_fault": follow_up_fault,
        })
        names = [name.strip() for value in served_models for name in value.split(",") if name.strip()]
        if names:
            plan.update({"served_models": names})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    key = AnswerKey.from_file(answer_key) if answer_key else AnswerKey()
    event_loop.run(_serve(StandinServer(plan, key, seed), host, port))


async def _serve(server: StandinServer, host: str, port: int) -> None:
    runner, bound = await start(server, host, port)
    print(f"listening on http://{host}:{bound}/v1", flush=True)
    await until_stopped()
    print(json.dumps(server.stats.as_dict()), file=sys.stderr, flush=True)
    await runner.cleanup()


if __name__ == "__main__":
    main()
