"""An OpenAI-compatible stand-in model server for tests, demos and benchmarks. Not a model.

It answers ``POST /v1/chat/completions`` in realistic, varied reply styles, models a serving
engine (a number of decode slots, queueing beyond them, service time with jitter), and injects
faults on demand. Control and statistics endpoints (``/_control``, ``/_stats``) let tests steer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from anesbench_testkit.standin.answers import AnswerKey, choose_letter, parse_options, prompt_language
from anesbench_testkit.standin.constrained import Unsatisfiable, applies_constraint, follow_up_reply, is_follow_up
from anesbench_testkit.standin.faults import FaultPlan, service_time
from anesbench_testkit.standin.logprobs import alternatives, completion_choice
from anesbench_testkit.standin.replies import STYLES, UNANSWERED, compose_reply

ANSWERING_STYLES = tuple(style for style in STYLES if style not in UNANSWERED)


@dataclass(slots=True)
class Stats:
    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    attempts_by_key: Counter[str] = field(default_factory=Counter)
    answered_by_key: Counter[str] = field(default_factory=Counter)
    first_request: float | None = None
    last_answer: float | None = None
    inflight: int = 0  # accepted, in a slot or queued for one
    max_inflight: int = 0
    running: int = 0  # in a slot
    max_running: int = 0
    slot_seconds: float = 0.0  # service time of every answered choice: the work the slots did
    longest: float = 0.0  # the longest single service time
    choices: int = 0  # answered choices (a request with n = 4 answers 4)
    follow_ups: int = 0  # answered follow-up turns (the conversation goes on after a reply)
    prompt_tokens: int = 0  # prefill: counted once per request, whatever its n
    completion_tokens: int = 0
    #: request key -> the letter each choice of its reply was written to commit to (None: to no answer)
    intended_by_key: dict[str, list[str | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "outcomes": dict(self.outcomes),
            "distinct_requests": len(self.attempts_by_key),
            "answered": sum(self.answered_by_key.values()),
            "answered_more_than_once": sum(1 for n in self.answered_by_key.values() if n > 1),
            "first_request": self.first_request,
            "last_answer": self.last_answer,
            "span_seconds": (self.last_answer - self.first_request)
            if self.first_request is not None and self.last_answer is not None else None,
            "inflight": self.inflight,
            "max_inflight": self.max_inflight,
            "max_running": self.max_running,
            "slot_seconds": self.slot_seconds,
            "longest_seconds": self.longest,
            "choices": self.choices,
            "follow_ups": self.follow_ups,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class StandinServer:
    def __init__(self, plan: FaultPlan | None = None, key: AnswerKey | None = None, seed: int = 0) -> None:
        self.plan = plan or FaultPlan()
        self.key = key or AnswerKey()
        self.stats = Stats()
        self._seed = seed
        self._fault_rng = random.Random(seed)
        self._slots: asyncio.Semaphore | None = None
        self._slot_count = -1
        self._admit = asyncio.Lock()  # a request with n > 1 takes its n slots without interleaving
        self._started = time.monotonic()
        self._not_before: dict[str, float] = {}  # request key -> when the Retry-After it was sent ends
        self._attempts = 0  # chat attempts that reached the fault plan, in arrival order

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_get("/get_server_info", self.server_info)
        app.router.add_get("/props", self.props)
        app.router.add_get("/_stats", self.get_stats)
        app.router.add_get("/_intended", self.get_intended)
        app.router.add_post("/_stats/reset", self.reset_stats)
        app.router.add_post("/_control", self.control)
        return app

    # --- plain endpoints ---------------------------------------------------------------------
    def _loading(self) -> web.Response | None:
        """During a cold start (``not_ready_seconds``), what a loading SGLang or llama.cpp answers."""
        if time.monotonic() - self._started >= self.plan.not_ready_seconds:
            return None
        self.stats.outcomes["not_ready"] += 1
        return web.json_response({"error": {"message": "Loading model", "type": "unavailable_error"}}, status=503)

    async def models(self, request: web.Request) -> web.Response:
        loading = self._loading()
        if loading is not None:
            return loading
        if self.plan.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.plan.api_key}":
            return web.json_response({"error": {"message": "stand-in: invalid API key"}}, status=401)
        return web.json_response({"object": "list", "data": [
            {"id": name, "object": "model", "owned_by": "vllm" if self.plan.constraints == "vllm" else "standin"}
            for name in self.plan.served_models
        ]})

    async def health(self, request: web.Request) -> web.Response:
        return self._loading() or web.Response(text="ok")

    async def server_info(self, request: web.Request) -> web.Response:
        """SGLang-style server info: the harness reads max_running_requests to size its concurrency."""
        if not self.plan.report_slots or self.plan.constraints not in ("sglang", "none"):
            raise web.HTTPNotFound()
        info: dict[str, Any] = {"max_running_requests": self.plan.slots or None, "standin": True}
        if self.plan.constraints == "sglang":
            info["grammar_backend"] = "xgrammar"
        return web.json_response(info)

    async def props(self, request: web.Request) -> web.Response:
        """llama.cpp-style server properties (only when playing llama.cpp)."""
        if self.plan.constraints != "llamacpp":
            raise web.HTTPNotFound()
        return web.json_response({"total_slots": self.plan.slots if self.plan.report_slots else 0,
                                  "default_generation_settings": {"n_ctx": 4096}, "standin": True})

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def get_intended(self, request: web.Request) -> web.Response:
        """What each answered request's reply commits to, by the sha256 of the request body (the engine's
        request_hash): tests compare the grader's reading of every stored reply with it."""
        return web.json_response(self.stats.intended_by_key)

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.stats = Stats()
        return web.json_response({"ok": True})

    async def control(self, request: web.Request) -> web.Response:
        try:
            self.plan.update(await request.json())
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.plan.as_dict())

    # --- chat ------------------------------------------------------------------------------------
    def _slot_gate(self) -> asyncio.Semaphore | None:
        if self.plan.slots != self._slot_count:
            self._slot_count = self.plan.slots
            self._slots = asyncio.Semaphore(self.plan.slots) if self.plan.slots > 0 else None
        return self._slots

    def _fault_for(self, key: str) -> str | None:
        attempt = self.stats.attempts_by_key[key]
        self._attempts += 1
        if attempt <= self.plan.fail_first:
            return self.plan.fail_kind
        if self.plan.fail_every and self._attempts % self.plan.fail_every == 0:
            return self.plan.fail_kind
        if self.plan.fault_rate and self._fault_rng.random() < self.plan.fault_rate:
            return self._fault_rng.choice(self.plan.fault_kinds)
        return None

    async def _inject(self, kind: str, request: web.Request, key: str) -> web.StreamResponse:
        self.stats.outcomes[kind] += 1
        headers = {}
        if self.plan.retry_after is not None:
            headers["Retry-After"] = f"{self.plan.retry_after:g}"
            self._not_before[key] = time.monotonic() + self.plan.retry_after
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if kind == "hang":
            await asyncio.sleep(self.plan.hang_seconds)
            return web.json_response({"error": "stand-in hang ended"}, status=504)
        if kind == "garbage":
            return web.Response(body=b"<html>proxy error</html>", content_type="text/html")
        message = {"429": "rate limited", "503": "server overloaded", "500": "internal error",
                   "400": "bad request", "401": "invalid API key"}[kind]
        return web.json_response({"error": {"message": f"stand-in: {message}"}}, status=int(kind), headers=headers)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        now = time.monotonic()
        stats = self.stats
        stats.requests += 1
        if stats.first_request is None:
            stats.first_request = now
        try:
            body = json.loads(raw)
            messages = body["messages"]
            follow_up = is_follow_up(messages)
            prompt = str(messages[-3 if follow_up else -1]["content"])  # the question
            follow_up = follow_up or applies_constraint(body, self.plan.constraints)
            n = int(body.get("n") or 1)
        except (ValueError, KeyError, IndexError, TypeError):
            stats.outcomes["bad_request"] += 1
            return web.json_response({"error": {"message": "expected a chat completion request"}}, status=400)
        key = hashlib.sha256(raw).hexdigest()
        stats.attempts_by_key[key] += 1
        if now < self._not_before.get(key, now):
            # Sent again before the Retry-After we gave ran out: what a rate limiter answers to that.
            stats.outcomes["retry_too_early"] += 1
            return web.json_response({"error": {"message": "stand-in: retried before Retry-After"}}, status=429,
                                     headers={"Retry-After": f"{self._not_before[key] - now:.3f}"})
        if self.plan.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.plan.api_key}":
            return await self._inject("401", request, key)
        loading = self._loading()
        if loading is not None:
            return loading
        if n != 1 and (not self.plan.accept_n or not 1 <= n <= 128):
            stats.outcomes["n_refused"] += 1
            detail = "n must be from 1 to 128" if self.plan.accept_n else "only n = 1 is supported"
            return web.json_response({"error": {"message": f"stand-in: {detail}", "param": "n"}}, status=400)
        fault = self.plan.follow_up_fault if follow_up and self.plan.follow_up_fault else self._fault_for(key)
        if fault is not None:
            return await self._inject(fault, request, key)
        model = str(body.get("model", "standin"))
        # A choice's identity: the request's seed for n = 1 (so samples sent one by one differ), its index otherwise.
        variants = [f"{model}:{body.get('seed')}"] if n == 1 else [f"{model}:n{i}" for i in range(n)]
        max_tokens = int(body.get("max_tokens") or 2048)
        # A follow-up decodes a few tokens after a prefill the server has mostly cached: a small share of a reply.
        scale = min(1.0, max_tokens / 256) if follow_up else 1.0
        durations = [scale * service_time(self.plan, key, prompt, variant, self._seed) for variant in variants]
        stats.inflight += 1
        stats.max_inflight = max(stats.max_inflight, stats.inflight)
        try:
            await self._serve(durations)
        finally:
            stats.inflight -= 1
        try:
            reply = (self._follow_up(key, model, prompt, body, messages) if follow_up
                     else self._reply(key, model, prompt, max_tokens, variants, durations))
        except Unsatisfiable as exc:
            stats.outcomes["constraint_refused"] += 1
            return web.json_response({"error": {"message": f"stand-in: {exc}"}}, status=400)
        stats.outcomes["ok"] += 1
        stats.answered_by_key[key] += 1
        stats.last_answer = time.monotonic()
        return web.Response(body=reply, content_type="application/json")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        """One next token and its alternatives (logprob scoring); the letter is the one a chat reply would give."""
        raw = await request.read()
        self.stats.requests += 1
        try:
            body = json.loads(raw)
            prompt, model, listed = str(body["prompt"]), str(body["model"]), int(body.get("logprobs") or 0)
            if int(body.get("max_tokens", 16)) < 1 or not 0 <= listed <= 20:
                raise ValueError("max_tokens must be >= 1 and logprobs from 0 to 20")
        except (ValueError, KeyError, TypeError) as exc:
            self.stats.outcomes["bad_request"] += 1
            return web.json_response({"error": {"message": f"expected a completion request: {exc}"}}, status=400)
        key = hashlib.sha256(raw).hexdigest()
        self.stats.attempts_by_key[key] += 1
        if self.plan.logprobs == "chat-only":
            return web.json_response({"error": {"message": "stand-in: this is a chat model and not supported in "
                                                           "the v1/completions endpoint"}}, status=404)
        if self.plan.logprobs == "refuse" and listed:
            return web.json_response({"error": {"message": "stand-in: logprobs are not supported"}}, status=400)
        fault = self._fault_for(key)
        if fault is not None:
            return await self._inject(fault, request, key)
        _, options, letter = self._decide(model, prompt, 0)
        self.stats.intended_by_key[key] = [letter]
        self.stats.outcomes["ok"] += 1
        self.stats.answered_by_key[key] += 1
        choice = completion_choice(self.plan.logprobs, alternatives(options, letter), min(listed, self.plan.top_logprobs))
        return web.json_response({"id": f"cmpl-{key[:24]}", "object": "text_completion", "model": model,
                                  "choices": [choice], "usage": {"prompt_tokens": len(prompt) // 4,
                                                                 "completion_tokens": 1}})

    async def _serve(self, durations: list[float]) -> None:
        """Each choice decodes in a slot of its own; the reply is sent when the last one ends."""
        gate = self._slot_gate()
        held = 0
        try:
            if gate is not None:
                async with self._admit if len(durations) > 1 else contextlib.nullcontext():
                    for _ in durations:
                        await gate.acquire()
                        held += 1
        except BaseException:  # cancelled while waiting (the client went away): give back what was taken
            for _ in range(held):
                gate.release()  # type: ignore[union-attr]
            raise
        await asyncio.gather(*(self._decode(seconds, gate) for seconds in durations))

    async def _decode(self, seconds: float, gate: asyncio.Semaphore | None) -> None:
        stats = self.stats
        stats.running += 1
        stats.max_running = max(stats.max_running, stats.running)
        try:
            if seconds > 0:
                await asyncio.sleep(seconds)
            stats.slot_seconds += seconds
            stats.longest = max(stats.longest, seconds)
        finally:
            stats.running -= 1
            if gate is not None:
                gate.release()

    def _decide(self, model: str, prompt: str, index: int) -> tuple[random.Random, dict[str, str], str | None]:
        """The reply's randomness, the options and the letter it commits to (None: it refuses or runs out).

        The reply depends only on the request, so a re-sent request gets the same answer.
        """
        rng = random.Random(f"{self._seed}:{model}:{prompt}" + (f":{index}" if index else ""))
        options = parse_options(prompt)
        if not options or rng.random() < self.plan.unanswerable_rate:
            return rng, options, None
        return rng, options, choose_letter(options, self.key.lookup(options), self.plan.accuracy, rng)

    def _follow_up(self, key: str, model: str, prompt: str, body: dict[str, Any],
                   messages: list[dict[str, Any]]) -> bytes:
        """The final letter after a reply: the one the reply committed to (or, for a reply that gave none,
        the one the model leans to), unless it changes its mind (``change_mind_rate``); also the answer to
        any request with a constraint the engine applies."""
        _, options, letter = self._decide(model, prompt, 0)
        reply = messages[-2].get("content") if len(messages) > 1 else ""
        rng = random.Random(f"{self._seed}:{model}:{prompt}:{reply}:final")
        if not options:  # a constrained question without lettered options: the constraint alone decides
            letter = ""
        elif letter is None:
            letter = choose_letter(options, self.key.lookup(options), self.plan.accuracy, rng)
        elif self.plan.change_mind_rate and rng.random() < self.plan.change_mind_rate:
            letter = rng.choice([other for other in options if other != letter] or [letter])
        content, finish = follow_up_reply(body, self.plan.constraints, letter, self.plan.unconstrained_reply, rng)
        self.stats.follow_ups += 1
        tokens = max(1, len(content) // 4)
        prompt_tokens = sum(len(str(message.get("content", ""))) for message in messages) // 4
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += tokens
        return json.dumps({
            "id": f"chatcmpl-{key[:24]}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": tokens,
                      "total_tokens": prompt_tokens + tokens},
        }, ensure_ascii=False).encode()

    def _choice(self, model: str, prompt: str, max_tokens: int, index: int,
                duration: float) -> tuple[dict[str, Any], int, str | None]:
        rng, options, letter = self._decide(model, prompt, index)
        language = prompt_language(prompt)
        if not options:
            content, reasoning, finish, intended = "I could not find a question with lettered options.", None, "stop", None
        else:
            style = rng.choice(("refusal", "truncated")) if letter is None else rng.choice(ANSWERING_STYLES)
            reply = compose_reply(style, letter=letter, choices=options, language=language, rng=rng)
            content, reasoning, finish, intended = reply.content, reply.reasoning, reply.finish_reason, reply.intended
        if self.plan.huge_reply_rate and rng.random() < self.plan.huge_reply_rate:
            # A runaway reply (a model that never stops repeating itself), far over the grader's limit.
            content += " padding" * (self.plan.huge_reply_bytes // 8)
        lognormal = self.plan.latency_dist == "lognormal"  # then the reply is as long as it took to decode
        tokens = round(duration * self.plan.tokens_per_second) if lognormal else len(content) // 4
        choice = {
            "index": index,
            "message": {"role": "assistant", "content": content, "reasoning_content": reasoning},
            "finish_reason": finish,
        }
        return choice, min(max(tokens, 1), max_tokens), intended

    def _reply(self, key: str, model: str, prompt: str, max_tokens: int, variants: list[str],
               durations: list[float]) -> bytes:
        choices, completion_tokens, intended = [], 0, []
        for index, duration in enumerate(durations):
            choice, tokens, letter = self._choice(model, prompt, max_tokens, index, duration)
            choices.append(choice)
            completion_tokens += tokens
            intended.append(letter)
        prompt_tokens = len(prompt) // 4
        stats = self.stats
        stats.intended_by_key[key] = intended
        stats.choices += len(choices)
        stats.prompt_tokens += prompt_tokens
        stats.completion_tokens += completion_tokens
        payload = {
            "id": f"chatcmpl-{key[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return json.dumps(payload, ensure_ascii=False).encode()


async def start(server: StandinServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start listening; return the runner (to clean up) and the bound port."""
    # shutdown_timeout: on SIGTERM a hung request (a "hang" fault) is cancelled, not waited for.
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    sockets = getattr(site._server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    return runner, bound
