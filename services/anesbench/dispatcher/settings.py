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
    # InferenceServices (anesbench.kube): enabled by a namespace; runs may name objects in it only.
    kube_namespace: str | None = None
    kube_owner: str = "anesbench-dispatcher"  # value of anesbench.io/started-by on models it starts
    gpu_budget: int = 0  # on-demand models up at once; 0 = unlimited
    model_idle_seconds: float = 300.0  # grace period before an unneeded on-demand model is stopped
    auth_token: str | None = None  # bearer token every Dispatcher RPC must carry; None = no authentication
    ready_timeout: float = 1800.0  # seconds a run waits for its InferenceService to become Ready
