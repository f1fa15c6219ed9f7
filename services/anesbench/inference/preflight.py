"""Preflight: before a run writes anything, its endpoints must be up, healthy and serving the model.

Checked for each endpoint (the URL itself was validated by :func:`validate_endpoint`):

1. health: ``GET {root}/health`` where the server has one (SGLang, vLLM and llama.cpp do; the root
   is the base URL without its ``/v1``); a 5xx there (llama.cpp says 503 while loading) is "not ready";
2. ``GET {base}/models``: 401/403 (a refused key) and 404 (a wrong base URL, with a hint when the
   ``/v1`` is missing) are configuration faults, exit 2; a 5xx or no connection is "not ready";
3. the model name is among the listed ids (else exit 2 naming the served models); a server that
   lists none is accepted with a warning.

"Not ready" is retried until ``wait_ready`` seconds have passed (a cold InferenceService loads its
weights for minutes), with a progress line every ``REPORT_EVERY`` seconds; then
:class:`EndpointNotReady` (exit 1). A run with several endpoints starts once one of them is ready;
the router takes the others in when they answer.

A logprob run then sends each endpoint one scoring request (:func:`probe_logprobs`): a server without
``/completions`` (a chat-only server or model) or one that answers without log-probabilities is refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

from anesbench.errors import EndpointNotReady, HttpError, InvalidInput
from anesbench.inference.client import COMPLETIONS, completion_body, top_logprobs
from anesbench.inference.constraints import PROBE_TIMEOUT as GENERATION_TIMEOUT
from anesbench.inference.constraints import served_models
from anesbench.inference.endpoint import public_endpoint, server_root
from anesbench.inference.transport import HttpOptions, HttpPool

PROBE_TIMEOUT = 5.0
POLL_INTERVAL = 1.0
REPORT_EVERY = 10.0
NOT_READY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

Report = Callable[[str], None]


async def _get(pool: HttpPool, path: str) -> tuple[int, bytes] | str:
    """The status and body, or why there is none yet (a string: waiting may fix it)."""
    try:
        response = await pool.request("GET", path)
    except HttpError as exc:
        if exc.fatal:  # an untrusted certificate, a name that does not resolve: waiting will not help
            raise
        return str(exc)
    except TimeoutError:
        return f"GET {path} got no answer within {PROBE_TIMEOUT:g} s"
    return response.status, response.body


async def check_endpoint(url: str, model: str, api_key: str | None, report: Report,
                         options: HttpOptions | None = None) -> str | None:
    """One round of checks for one endpoint: None when ready, else why not yet; InvalidInput: give up."""
    shown = public_endpoint(url)
    parts = urlsplit(url)
    base_path = parts.path.rstrip("/")
    root_path = urlsplit(server_root(url)).path
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    async with HttpPool(origin, timeout=PROBE_TIMEOUT, api_key=api_key, options=options) as pool:
        health = await _get(pool, f"{root_path}/health")
        if isinstance(health, str):
            return health
        status, body = health
        if status >= 500:
            detail = body[:200].decode("utf-8", "replace").strip()
            return f"{root_path}/health answered HTTP {status}" + (f": {detail}" if detail else "")
        # 200: healthy. Anything else (404, a hosted API's 401 on an unknown path): no health endpoint here.
        listing = await _get(pool, f"{base_path}/models")
    if isinstance(listing, str):
        return listing
    status, body = listing
    where = f"{shown}/models"
    if status in (401, 403):
        raise InvalidInput(f"{shown} refuses the API key (HTTP {status} on {where}); "
                           "set $ANESBENCH_API_KEY or {api_key_file}", field="endpoints", mentions=("api_key_file",))
    if status == 404:
        hint = (f"; an OpenAI-compatible base URL usually ends in /v1: try {shown}/v1"
                if not base_path.endswith("/v1") else "; is this an OpenAI-compatible base URL?")
        raise InvalidInput(f"{where} not found (HTTP 404){hint}", field="endpoints")
    if status in NOT_READY_STATUS:
        return f"{where} answered HTTP {status}"
    if status != 200:
        raise InvalidInput(f"{where} answered HTTP {status}: {body[:200].decode('utf-8', 'replace')}",
                           field="endpoints")
    try:
        served = list(served_models(json.loads(body)) or ())
    except ValueError:
        served = []
    if not served:
        report(f"warning: {where} lists no models; the model {model!r} cannot be checked before the run")
        return None
    if model not in served:
        listed = ", ".join(repr(name) for name in served[:20]) + (" ..." if len(served) > 20 else "")
        raise InvalidInput(f"{model!r} is not served by {shown}; it serves {listed}", field="model")
    return None


async def preflight(
    endpoints: Sequence[str], model: str, *, api_key: str | None = None, wait_ready: float = 0.0,
    report: Report = lambda line: None, options: HttpOptions | None = None,
) -> None:
    """Return once at least one endpoint is ready and serves ``model``; raise InvalidInput or EndpointNotReady."""
    if not endpoints:
        raise InvalidInput("at least one is needed", field="endpoints")
    started = reported = time.monotonic()
    deadline = started + wait_ready
    while True:
        outcomes = await asyncio.gather(
            *(check_endpoint(url, model, api_key, report, options) for url in endpoints), return_exceptions=True
        )
        if faults := [outcome for outcome in outcomes if isinstance(outcome, BaseException)]:
            raise faults[0]  # a configuration fault (or a fatal TLS/DNS one)
        causes = {public_endpoint(url): outcome for url, outcome in zip(endpoints, outcomes, strict=True)
                  if isinstance(outcome, str)}
        if len(causes) < len(endpoints):
            for shown, cause in causes.items():
                report(f"warning: endpoint {shown} is not ready ({cause}); starting on the others")
            return
        cause = "; ".join(f"{shown}: {text}" for shown, text in causes.items()) if len(causes) > 1 \
            else next(iter(causes.values()))
        now = time.monotonic()
        if now >= deadline:
            hint = "" if wait_ready else " (set {wait_ready} to wait for a server that is still starting)"
            raise EndpointNotReady(f"endpoint {' '.join(causes)} not ready after {wait_ready:g} s: {cause}{hint}",
                                   mentions=("wait_ready",))
        if now - reported >= REPORT_EVERY or reported == started:
            reported = now
            report(f"waiting for the endpoint to be ready ({now - started:.0f} s of {wait_ready:g} s): {cause}")
        await asyncio.sleep(min(POLL_INTERVAL, max(deadline - time.monotonic(), 0.0)))


async def probe_logprobs(endpoints: Sequence[str], model: str, *, api_key: str | None = None,
                         report: Report = lambda line: None, options: HttpOptions | None = None) -> None:
    """Refuse (InvalidInput) an endpoint that cannot score by log-probabilities; one that does not answer
    the probe is left to the run (preflight found it not ready, or it went away since)."""
    body = completion_body(model, [{"role": "user", "content": "Question: 1 + 1 = ?\nA. 2\nB. 3\nAnswer:"}])
    for url in endpoints:
        shown = f"{public_endpoint(url)}{COMPLETIONS}"
        try:
            async with HttpPool(url, timeout=GENERATION_TIMEOUT, api_key=api_key, options=options) as pool:
                response = await pool.request("POST", COMPLETIONS, body)
        except (HttpError, TimeoutError) as exc:
            report(f"warning: {shown} did not answer the log-probability probe ({exc or 'timeout'})")
            continue
        detail = response.body[:200].decode("utf-8", "replace").strip()
        if response.status == 404:
            cause = f"not found (HTTP 404: {detail}): a chat-only server or model cannot be scored by log-probabilities"
        elif response.status != 200:
            cause = f"refuses a log-probability request (HTTP {response.status}: {detail})"
        else:
            try:
                top_logprobs(json.loads(response.body)["choices"][0])
                continue
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                cause = f"cannot return log-probabilities ({exc})"
        raise InvalidInput(f"{shown} {cause}; {{scoring}} logprobs needs a server that returns them (SGLang, vLLM, "
                           "llama.cpp)", field="endpoints", mentions=("scoring",))
