"""One endpoint's ``POST {base}/chat/completions`` (or ``/completions`` for logprob scoring) with a sized
connection pool; retries live in the router.

For logprob scoring, the first generated token's alternatives come in one of two shapes: the OpenAI
legacy completions shape (SGLang, vLLM, hosted APIs) ``choices[0].logprobs.top_logprobs ==
[{token: logprob, ...}, ...]``, one map per generated token; or llama.cpp's server
``choices[0].logprobs.content == [{"top_logprobs": [{"token": ..., "logprob": ...}, ...]}, ...]``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from anesbench import metrics
from anesbench.defaults import DEFAULT_MAX_TOKENS, DEFAULT_REQUEST_TIMEOUT_S, DEFAULT_TEMPERATURE
from anesbench.errors import ChoicesRefused, FatalInferenceError, HttpError, InferenceError, RetryableInferenceError
from anesbench.inference.endpoint import public_endpoint
from anesbench.inference.transport import HttpOptions, HttpPool
from anesbench.limiter import DynamicLimiter

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
FATAL_STATUS = {401, 403, 404}  # every later request would fail the same way
TOP_LOGPROBS = 20  # vLLM's default cap (--max-logprobs); OpenAI's legacy API allowed 5
CHAT, COMPLETIONS = "/chat/completions", "/completions"
MAX_RETRY_AFTER = 120.0
OUTCOMES = ("ok", "rate_limited", "server_error", "timeout", "connection_error", "client_error", "bad_payload")
_NAMES_N = re.compile(r"""(?:\bn\b|"param"\s*:\s*"n"|choice)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GenerationParams:
    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE


def request_body(model: str, messages: Sequence[dict[str, str]], params: GenerationParams, seed: int | None,
                 n: int = 1, **extra: Any) -> bytes:
    """The JSON body of a chat completion request (non-streaming); ``n > 1`` asks for that many choices,
    ``extra`` are further fields (a decoding constraint)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": list(messages),
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "stream": False,
        **extra,
    }
    if seed is not None:
        body["seed"] = seed
    if n > 1:
        body["n"] = n
    return json.dumps(body, ensure_ascii=False).encode()


def completion_body(model: str, messages: Sequence[dict[str, str]]) -> bytes:
    """A logprob scoring request: the messages' texts as one prompt, and the one next token, greedy, with its
    top ``TOP_LOGPROBS`` alternatives."""
    prompt = "\n\n".join(message["content"] for message in messages)
    body = {"model": model, "prompt": prompt, "max_tokens": 1, "temperature": 0.0, "logprobs": TOP_LOGPROBS,
            "stream": False}
    return json.dumps(body, ensure_ascii=False).encode()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped.

    >>> parse_retry_after("2")
    2.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


Top = list[tuple[str, float]]  # (token text, log-probability), as the server listed them


def top_logprobs(choice: Mapping[str, Any]) -> Top:
    """The first token's alternatives of a ``/completions`` choice; ValueError when it has none."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, dict):
        raise ValueError("the reply carries no logprobs")
    try:
        if logprobs.get("content"):
            first = logprobs["content"][0]["top_logprobs"]
            top = [(str(entry["token"]), float(entry["logprob"])) for entry in first]
        else:
            top = [(str(token), float(value)) for token, value in logprobs["top_logprobs"][0].items()]
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ValueError(f"the reply's logprobs are not in a known shape ({type(exc).__name__})") from None
    if not top:
        raise ValueError("the reply's top logprobs are empty")
    return top


Choice = tuple[str, str | None, str | None]  # content, reasoning, finish_reason


@dataclass(slots=True)
class Completion:
    content: str
    reasoning: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None  # of all choices together
    latency: float  # seconds, the successful attempt
    attempts: int
    choices: list[Choice] = field(default_factory=list)  # every choice in index order (n > 1); the first is above
    top_logprobs: list[tuple[str, float]] | None = None  # /completions: the first token's alternatives


def _choice(choice: Any) -> Choice:
    message = choice["message"] if "text" not in choice else {"content": choice["text"]}
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning") or None
    return content, reasoning, choice.get("finish_reason")


class ChatClient:
    """One endpoint of the router: its concurrency limit and a connection pool sized to the limit's maximum;
    ``attempt`` is safe to call concurrently."""

    def __init__(
        self, endpoint: str, model: str, limiter: DynamicLimiter | None = None, *, api_key: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S, options: HttpOptions | None = None, path: str = CHAT,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.limiter = limiter or DynamicLimiter(64)
        self._path = path
        self._http = HttpPool(self.endpoint, size=self.limiter.maximum, timeout=request_timeout, api_key=api_key,
                              options=options)
        self._requests = {outcome: metrics.INFERENCE_REQUESTS.labels(model, outcome) for outcome in OUTCOMES}
        self._duration = metrics.INFERENCE_DURATION.labels(model)
        self._inflight = metrics.INFERENCE_INFLIGHT.labels(model)
        self._tokens = [metrics.INFERENCE_TOKENS.labels(model, kind) for kind in ("prompt", "completion")]

    async def close(self) -> None:
        await self._http.close()

    def record(self, error: RetryableInferenceError | None, latency: float | None, inflight: int) -> None:
        if error is None and latency is not None:
            self.limiter.observe(latency, inflight)
        elif error is not None and error.cause in ("rate_limited", "server_error"):  # the server pushed back
            self.limiter.overloaded()

    async def attempt(self, payload: bytes, n: int = 1) -> Completion:
        """One HTTP attempt (``n``: the choices the body asks for); raises RetryableInferenceError,
        InferenceError (ChoicesRefused when a server refuses ``n``) or FatalInferenceError."""
        started = time.perf_counter()
        self._inflight.inc()
        try:
            response = await self._http.request("POST", self._path, payload)
        except TimeoutError:
            self._requests["timeout"].inc()
            raise RetryableInferenceError(f"no answer within {self._http.timeout:g} s", cause="timeout") from None
        except HttpError as exc:
            self._requests["connection_error"].inc()
            if exc.fatal:  # an untrusted certificate, a name that does not resolve: the same for every request
                raise FatalInferenceError(f"{public_endpoint(self.endpoint)}: {exc.message}", mentions=exc.mentions) from None
            raise RetryableInferenceError(f"connection failed: {exc}", cause="connection_error") from None
        finally:
            self._inflight.dec()
            latency = time.perf_counter() - started
            self._duration.observe(latency)
        status = response.status
        if status != 200:
            detail = response.body[:300].decode("utf-8", "replace")
            if status in RETRYABLE_STATUS:
                cause = "rate_limited" if status == 429 else "server_error"
                self._requests[cause].inc()
                raise RetryableInferenceError(f"HTTP {status}: {detail}", cause=cause,
                                              retry_after=parse_retry_after(response.headers.get("retry-after")))
            self._requests["client_error"].inc()
            if status in FATAL_STATUS:
                raise FatalInferenceError(f"HTTP {status} from {public_endpoint(self.endpoint)}{self._path}: {detail}")
            if n > 1 and status in (400, 422) and _NAMES_N.search(detail):
                raise ChoicesRefused(f"HTTP {status}: {detail}")
            raise InferenceError(f"HTTP {status}: {detail}")
        try:
            data = json.loads(response.body)
            listed = data["choices"][:1] if n == 1 else sorted(data["choices"], key=lambda c: int(c.get("index", 0)))
            choices = [_choice(choice) for choice in listed]
            if len(choices) != n:
                raise ValueError(f"asked for {n} choices, got {len(choices)}")
            usage = data.get("usage") or {}
            prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
            top = top_logprobs(data["choices"][0]) if self._path == COMPLETIONS else None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            self._requests["bad_payload"].inc()
            raise RetryableInferenceError("malformed chat completion payload", cause="bad_payload") from None
        self._requests["ok"].inc()
        for counter, count in zip(self._tokens, (prompt_tokens, completion_tokens), strict=True):
            if count:
                counter.inc(count)
        content, reasoning, finish = choices[0]
        return Completion(content, reasoning, finish, prompt_tokens, completion_tokens, latency, 1, choices, top)
