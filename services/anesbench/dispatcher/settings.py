"""The dispatcher's configuration, built once from the command line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    host: str
    port: int
    grader: str  # HOST:PORT of the grader service
    db: str
    metrics_port: int | None = None
    datasets_dir: str | None = None
    allowed_endpoints: tuple[str, ...] = ()  # URL prefixes; empty = loopback only
    api_key: str | None = None  # from the dispatcher's environment or a file, never from a request
    grace_seconds: float = 10.0
    grader_connections: int = 4  # connections to the grader Service (so its replicas share the work)
    grader_grace: float = 120.0  # seconds a grade request is re-sent while the grader is down; then its run fails
