"""The dispatcher's configuration, built once from the command line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from anesbench.errors import InvalidInput
from anesbench.inference.endpoint import matches_prefix
from anesbench.serving.security import ClientTls, ServerTls

# The options of `anesbench serve dispatcher` by their own names (cli/serve_cmd.py defines them; a test
# checks the two agree). An error raised in the dispatcher that mentions one, as ``{datasets_dir}``, gets
# the option written into its message by the dispatcher's edge (dispatcher/server.py), not by a client.
SERVE_OPTIONS = frozenset({
    "host", "port", "grader", "db", "metrics_port", "datasets_dir", "allow_endpoint", "api_key_file",
    "grader_connections", "endpoint_key_file", "auth_token_file", "read_token_file", "health_port",
    "tls_cert", "tls_key", "tls_client_ca", "allow_inference_service", "max_upload_bytes",
    "store_budget_bytes", "grader_ca", "grader_cert", "grader_key", "grader_token_file", "kube_namespace",
    "instance_name", "gpu_budget", "model_idle_seconds", "ready_timeout", "grader_grace",
})


def serve_option(name: str) -> str | None:
    """A setting of this dispatcher as its command line spells it; None for any other name.

    >>> serve_option("datasets_dir"), serve_option("concurrency")
    ('--datasets-dir', None)
    """
    return "--" + name.replace("_", "-") if name in SERVE_OPTIONS else None


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
    # (URL prefix, key): a key sent only to endpoints under its prefix (--endpoint-key-file)
    endpoint_keys: tuple[tuple[str, str], ...] = ()
    grace_seconds: float = 10.0
    grader_connections: int = 4  # connections to the grader Service (so its replicas share the work)
    grader_grace: float = 120.0  # seconds a grade request is re-sent while the grader is down; then its run fails
    # InferenceServices (anesbench.kube): enabled by a namespace; runs may name objects in it only.
    kube_namespace: str | None = None
    kube_owner: str = "anesbench-dispatcher"  # value of anesbench.io/started-by on models it starts
    gpu_budget: int = 0  # on-demand models up at once; 0 = unlimited
    model_idle_seconds: float = 300.0  # grace period before an unneeded on-demand model is stopped
    auth_token: str | None = None  # runner role's bearer token; None = no authentication
    read_token: str | None = None  # reader role's bearer token (reads only)
    tls: ServerTls | None = None  # None: plain text
    health_port: int | None = None  # plain-text grpc.health.v1 only, for kubelet's probes
    grader_tls: ClientTls | None = None  # None: plain text to the grader
    grader_token: str | None = None  # bearer token the grader requires of its callers
    allowed_inference_services: tuple[str, ...] = ()  # names runs may use; empty = any in kube_namespace
    max_upload_bytes: int = 0  # largest dataset upload (canonical JSON); 0 = only the message limit
    store_budget_bytes: int = 0  # the DuckDB file (and WAL) may not grow past this; 0 = no budget
    ready_timeout: float = 1800.0  # seconds a run waits for its InferenceService to become Ready

    def key_for(self, endpoints: Sequence[str]) -> str | None:
        """The API key of a run's endpoints: the longest matching --endpoint-key-file prefix, else the
        dispatcher-wide key. A run whose endpoints need different keys is refused."""
        keys = set()
        for url in endpoints:
            matches = [(len(prefix), key) for prefix, key in self.endpoint_keys if matches_prefix(url, prefix)]
            keys.add(max(matches)[1] if matches else self.api_key)
        if len(keys) > 1:
            raise InvalidInput("the endpoints of one run use different API keys; run them separately", field="endpoints")
        return keys.pop() if keys else self.api_key
