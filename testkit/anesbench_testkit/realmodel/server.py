"""Start llama.cpp's HTTP server (through xllamacpp) on a cached tiny model."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anesbench.errors import InvalidInput, StartupFailed
from anesbench_testkit.realmodel.model import DEFAULT_MODEL

READY_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0  # 0 picks a free port
    slots: int = 2  # llama.cpp --parallel: requests decoded together (continuous batching)
    slot_context: int = 2048  # tokens of context per slot (prompt + reply); llama.cpp's -c is slots x this
    threads: int = 2
    alias: str = DEFAULT_MODEL  # the model name in /v1/models and in replies
    # False: every prompt is computed whole. A reused prefix shifts the next-token probabilities (by
    # about 0.03 in log-probability on Gemma 3 270M), so a request's numbers depend on the ones before it.
    prompt_cache: bool = True

    def check(self) -> None:
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidInput(f"the test model server binds the loopback interface only, not {self.host}", field="host")
        for name in ("slots", "slot_context", "threads"):
            if getattr(self, name) < 1:
                raise InvalidInput("must be at least 1", field=name)


def start(model: Path, options: ServerOptions) -> tuple[Any, str]:
    """The running server object (keep a reference: dropping it stops the server) and its base URL."""
    options.check()
    import xllamacpp  # lazily: the optional extra anesbench[realmodel]

    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.model_alias = {options.alias}
    params.hostnames = [options.host]
    params.port = options.port
    params.n_parallel = options.slots
    params.n_ctx = options.slots * options.slot_context
    params.cpuparams.n_threads = options.threads
    params.cpuparams_batch.n_threads = options.threads
    params.endpoint_props = True  # GET /props: total_slots, read by the concurrency sizing
    params.endpoint_metrics = True
    params.cache_prompt = options.prompt_cache
    server = xllamacpp.Server(params)
    address = str(server.listening_address).rstrip("/")
    wait_healthy(address)
    return server, address


def wait_healthy(address: str, timeout: float = READY_TIMEOUT) -> None:
    """Block until ``GET /health`` answers 200 ``{"status": "ok"}``."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{address}/health", timeout=5) as reply:
                if json.loads(reply.read()).get("status") == "ok":
                    return
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StartupFailed(f"{address}/health: not ready after {timeout:.0f} s ({last})")
