"""The lean HTTP/1.1 client: framing, keep-alive, failures and deadlines, against raw byte servers."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest

from anesbench.errors import HttpError
from anesbench.inference.transport import HttpPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.base_events.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    return head.decode(), body


def _responder(*responses: bytes, close_after: bool = False) -> tuple[Handler, list[str]]:
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for response in responses:
                head, body = await _read_request(reader)
                seen.append(head + body.decode())
                writer.write(response)
                await writer.drain()
            if close_after:
                writer.close()
            else:
                await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handle, seen


async def test_content_length_keep_alive_and_request_shape() -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRetry-After: 3\r\n\r\n{}"
    handler, seen = _responder(ok, ok)
    server, base = await _serve(handler)
    pool = HttpPool(base, size=1, api_key="k")
    first = await pool.request("POST", "/chat/completions", b'{"a":1}')
    second = await pool.request("POST", "/chat/completions", b'{"a":2}')
    assert (first.status, first.body, first.headers["retry-after"]) == (200, b"{}", "3")
    assert second.body == b"{}" and len(seen) == 2  # both on the one keep-alive connection
    assert seen[0].startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert "Authorization: Bearer k\r\n" in seen[0] and "Content-Length: 7\r\n" in seen[0] and seen[1].endswith('{"a":2}')
    await pool.close()
    server.close()


async def test_chunked_gzip_and_close_delimited_bodies() -> None:
    payload = gzip.compress(b'{"x": "y"}')
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
               + f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n")
    handler, _ = _responder(chunked)
    server, base = await _serve(handler)
    pool = HttpPool(base)
    assert (await pool.request("GET", "/x")).body == b'{"x": "y"}'
    server.close()
    until_close = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy"
    handler, _ = _responder(until_close, close_after=True)
    server, base = await _serve(handler)
    pool = HttpPool(base)
    response = await pool.request("POST", "/y", b"{}")
    assert (response.status, response.body) == (503, b"busy")
    await pool.close()
    server.close()


async def test_reset_garbage_and_refused_connections_raise_connection_errors() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.transport.abort()

    server, base = await _serve(reset)
    with pytest.raises(HttpError, match="closed before the response ended"):
        await HttpPool(base).request("POST", "/z", b"{}")
    server.close()
    handler, _ = _responder(b"SMTP ready\r\n\r\n")
    server, base = await _serve(handler)
    with pytest.raises(HttpError, match="malformed HTTP response"):
        await HttpPool(base).request("POST", "/z", b"{}")
    server.close()
    with pytest.raises(HttpError, match="cannot connect"):
        await HttpPool("http://127.0.0.1:9/v1").request("GET", "/")


async def test_deadline_and_pool_size() -> None:
    active = 0
    peak = 0

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal active, peak
        try:
            while True:
                await _read_request(reader)
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.05)
                active -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server, base = await _serve(slow)
    pool = HttpPool(base, size=3)
    await asyncio.gather(*(pool.request("GET", "/") for _ in range(12)))
    assert peak == 3
    hurried = HttpPool(base, timeout=0.01)
    with pytest.raises(TimeoutError):
        await hurried.request("GET", "/")
    await pool.close()
    server.close()


def test_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError):
        HttpPool("ftp://example/v1")
