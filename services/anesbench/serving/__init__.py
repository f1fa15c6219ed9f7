"""Server plumbing shared by the grader and dispatcher services: a grpc.aio server with our limits,
keepalive, health and reflection, and the lifecycle both servers share. :mod:`.status` turns our
exceptions into status codes (the ``@rpc`` decorator) and back on the client; :mod:`.security` holds
TLS and the bearer tokens with roles.

Start: health NOT_SERVING -> bind and start -> print ``listening on HOST:PORT`` (and
``metrics on HOST:PORT``) -> ``Service.start()`` (warm-up) -> SERVING.
Drain on the first signal: health NOT_SERVING (load balancers and probes stop sending work),
``Service.drain()`` (long-lived streams finish their current batch), stop accepting RPCs, give
in-flight ones ``grace_seconds``, run ``Service.shutdown()``, exit 0. A second signal cuts the
grace short.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from wsgiref.simple_server import WSGIServer

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as grpc_health
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from anesbench import event_loop
from anesbench.serving.security import ServerTls

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest request or response either service accepts (a full dataset upload fits easily)."""

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Ping idle connections so a peer that vanished without a FIN (node loss, NAT timeout) is
    # noticed within ~40 s instead of holding a stream open forever.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Clients (RemoteGrader, CLI) ping every 20 s; accept that rather than answering GOAWAY
    # "too_many_pings", which would break the long-lived GradeStream.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Two processes must never share a port silently (gRPC enables SO_REUSEPORT by default).
    ("grpc.so_reuseport", 0),
)

CLIENT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after a replica restarts; gRPC's default starts at 1 s and grows to 120 s.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)
"""Channel options for our own clients, matching what the servers permit."""

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def build_server(interceptors: Sequence[Any] = ()) -> grpc.aio.Server:
    return grpc.aio.server(options=SERVER_OPTIONS, interceptors=list(interceptors) or None)


@dataclass(frozen=True)
class ServeConfig:
    host: str
    port: int  # 0 = any free port (printed on stdout)
    metrics_port: int | None = None  # None = no /metrics endpoint; 0 = any free port
    grace_seconds: float = 10.0  # how long in-flight RPCs may run on after a drain starts
    shutdown_timeout_seconds: float = 10.0  # bound on the service's own shutdown hook
    interceptors: tuple[Any, ...] = ()  # grpc.aio.ServerInterceptor, e.g. the bearer-token check (TokenRoles)
    tls: ServerTls | None = None  # None: plain text (loopback, or behind a mesh that encrypts)
    # A plain-text port serving grpc.health.v1 only: kubelet's native gRPC probes cannot speak TLS.
    health_port: int | None = None


class Service(Protocol):
    """What a service hands to :func:`run`; a class that names it as a base may leave out ``start`` and ``shutdown``."""

    service_names: Sequence[str]  # full names of the gRPC services it registers, e.g. ``anesbench.v1.Grader``

    def register(self, server: grpc.aio.Server) -> None: ...

    async def start(self) -> None:
        """Get ready to serve (warm caches, open stores); health stays NOT_SERVING until it returns."""
        return None

    def drain(self) -> None:
        """Stop taking new work on long-lived streams; called when draining begins."""

    async def shutdown(self) -> None:
        """Release resources after the server stopped (flush, close files, join pools)."""
        return None


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def serve(make_service: Callable[[], Service], config: ServeConfig) -> int:
    """Blocking entry point: run the service until a signal; returns the process exit code."""

    async def main() -> int:
        return await run(make_service(), config)

    return event_loop.run(main())


async def run(
    service: Service,
    config: ServeConfig,
    *,
    stop: asyncio.Event | None = None,
    announce: Callable[[str], None] = functools.partial(print, flush=True),  # parsed: never in a buffer
) -> int:
    """Serve until ``stop`` is set (by default: on SIGTERM or SIGINT), then drain; returns an exit code."""
    names = tuple(service.service_names)
    server = build_server(config.interceptors)
    health = grpc_health.HealthServicer()
    for name in ("", *names):  # Kubernetes probes ask for "" (the whole server), clients for a service's name
        await health.set(name, NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    service.register(server)
    # Let grpcurl and friends discover the API: the services themselves, health and reflection.
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)

    probes: grpc.aio.Server | None = None
    if config.health_port is not None:
        probes = build_server()
        health_pb2_grpc.add_HealthServicer_to_server(health, probes)
    metrics_httpd: WSGIServer | None = None
    # The first SIGTERM/SIGINT drains, the next cuts the grace short; a given ``stop`` replaces the signals.
    handled = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    draining, hurry = stop or asyncio.Event(), asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        log.info("received %s", sig.name)
        (hurry if draining.is_set() else draining).set()

    for sig in handled:
        asyncio.get_running_loop().add_signal_handler(sig, on_signal, sig)
    try:
        try:
            if config.metrics_port is not None:
                metrics_httpd, _ = start_http_server(config.metrics_port, addr=config.host)
            address = hostport(config.host, config.port)
            if config.tls is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, config.tls.credentials())
            if probes is not None:
                probes_port = probes.add_insecure_port(hostport(config.host, config.health_port or 0))
        except (OSError, RuntimeError) as exc:
            log.error("cannot listen on %s: %s", config.host, exc)
            return 1
        await server.start()
        announce(f"listening on {hostport(config.host, port)}")
        if probes is not None:
            await probes.start()
            announce(f"health on {hostport(config.host, probes_port)}")
        if metrics_httpd is not None:
            announce(f"metrics on {hostport(config.host, metrics_httpd.server_port)}")
        try:
            await service.start()
        except Exception:
            log.exception("service failed to start")
            await server.stop(None)
            await _shutdown(service, config.shutdown_timeout_seconds)
            return 1
        for name in ("", *names):
            await health.set(name, SERVING)
        log.info("serving %s on %s", ", ".join(names), hostport(config.host, port))
        await draining.wait()
        log.info("draining: health NOT_SERVING, %.1f s grace for in-flight RPCs", config.grace_seconds)
        await health.enter_graceful_shutdown()
        service.drain()
        await _stop_server(server, config.grace_seconds, hurry)
        return await _shutdown(service, config.shutdown_timeout_seconds)
    finally:
        if probes is not None:
            await probes.stop(None)
        for sig in handled:
            asyncio.get_running_loop().remove_signal_handler(sig)
        if metrics_httpd is not None:
            metrics_httpd.shutdown()
            metrics_httpd.server_close()


async def _stop_server(server: grpc.aio.Server, grace: float, hurry: asyncio.Event) -> None:
    stopping = asyncio.ensure_future(server.stop(grace))
    hurried = asyncio.ensure_future(hurry.wait())
    await asyncio.wait({stopping, hurried}, return_when=asyncio.FIRST_COMPLETED)
    if not stopping.done():
        log.warning("second signal: cancelling in-flight RPCs now")
        await server.stop(None)  # a smaller grace wins over the pending one (grpc.aio semantics)
    hurried.cancel()
    await stopping


async def _shutdown(service: Service, timeout: float) -> int:
    try:
        await asyncio.wait_for(service.shutdown(), timeout)
    except TimeoutError:
        log.error("shutdown hook did not finish within %.1f s", timeout)
        return 1
    except Exception:
        log.exception("shutdown hook failed")
        return 1
    log.info("stopped")
    return 0
