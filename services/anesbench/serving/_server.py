"""Construction of a grpc.aio server with our limits, keepalive policy, health and reflection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

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
    """A grpc.aio server with the shared message limits and keepalive policy; nothing registered."""
    return grpc.aio.server(options=SERVER_OPTIONS, interceptors=list(interceptors) or None)


async def add_health(server: grpc.aio.Server, service_names: Sequence[str]) -> health.aio.HealthServicer:
    """Register grpc.health.v1.Health reporting NOT_SERVING for "" and each service until told otherwise.

    Kubernetes probes ask for "" (the whole server); clients may ask for a service's full name.
    """
    servicer = health.aio.HealthServicer()
    for name in ("", *service_names):
        await servicer.set(name, NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    return servicer


async def set_serving(servicer: health.aio.HealthServicer, service_names: Sequence[str]) -> None:
    for name in ("", *service_names):
        await servicer.set(name, SERVING)


def add_reflection(server: grpc.aio.Server, service_names: Sequence[str]) -> None:
    """Let grpcurl and friends discover the API: the services themselves, health and reflection."""
    names = (
        *service_names,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
