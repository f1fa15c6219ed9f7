"""The HTTP client against what hosted APIs and corporate networks do: proxies, private CAs, idle
keep-alive expiry, DNS and TLS failures, credentials and header values, broken bodies."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from anesbench import errors
from anesbench.cli.exit_codes import message_for
from anesbench.inference.client import ChatClient
from anesbench.inference.router import EndpointRouter, RetryPolicy
from anesbench.inference.transport import HttpOptions, HttpPool, proxy_for
from anesbench.limiter import DynamicLimiter
from tests.nettools import TEST_HOST, ChatServer, ConnectProxy, ForwardProxy, private_ca, read_head
from tests.waiting import eventually

PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "all_proxy",
              "ALL_PROXY", "SSL_CERT_FILE")
BODY = b'{"model":"m","messages":[]}'


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    yield


# --- proxies ----------------------------------------------------------------------------------------
async def test_plain_http_goes_through_the_forward_proxy_with_the_full_url(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ChatServer() as origin, ForwardProxy({TEST_HOST: origin.port}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        pool = HttpPool(f"http://{TEST_HOST}:8000/v1")
        for _ in range(3):
            response = await pool.request("POST", "/chat/completions", BODY)
            assert response.status == 200 and b"The answer is A." in response.body
        await pool.close()
    # every request went through the proxy, in absolute form; the name was resolved by the proxy, not us
    assert proxy.seen == [f"POST http://{TEST_HOST}:8000/v1/chat/completions HTTP/1.1"] * 3
    assert [first for first, _ in origin.requests] == ["POST /v1/chat/completions HTTP/1.1"] * 3
    assert origin.requests[0][1]["host"] == f"{TEST_HOST}:8000"


async def test_proxy_credentials_go_to_the_proxy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ChatServer() as origin, ForwardProxy({TEST_HOST: origin.port}) as proxy:
        monkeypatch.setenv("http_proxy", f"http://alice:s%3Acret@127.0.0.1:{proxy.port}")
        pool = HttpPool(f"http://{TEST_HOST}/v1")
        assert (await pool.request("POST", "/chat/completions", BODY)).status == 200
        await pool.close()
    assert proxy.seen == [f"POST http://{TEST_HOST}/v1/chat/completions HTTP/1.1"]
    assert "proxy-authorization" not in origin.requests[0][1]  # the proxy strips it, as real ones do
    assert pool.proxy is not None and pool.proxy.authorization == "Basic " + base64.b64encode(b"alice:s:cret").decode()


async def test_https_goes_through_a_connect_tunnel_trusting_the_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca(tmp_path)
    async with ChatServer(tls=ca.server_context()) as origin, ConnectProxy({TEST_HOST: origin.port}) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # for http:// only; must not be used here
        pool = HttpPool(f"https://{TEST_HOST}:8443/v1", options=HttpOptions(ca_bundle=str(ca.ca_pem)))
        for _ in range(2):
            response = await pool.request("POST", "/chat/completions", BODY)
            assert response.status == 200 and b"The answer is A." in response.body
        await pool.close()
    assert proxy.seen == [f"CONNECT {TEST_HOST}:8443 HTTP/1.1"]  # one tunnel, kept alive for both requests
    assert [first for first, _ in origin.requests] == ["POST /v1/chat/completions HTTP/1.1"] * 2  # origin-form


async def test_a_proxy_refusing_the_tunnel_is_a_proxy_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    with pytest.raises(errors.ProxyError, match=r"refused CONNECT model.test:443: HTTP/1.1 403 Forbidden"):
        await HttpPool(f"https://{TEST_HOST}/v1").request("GET", "/models")
    server.close()


def test_no_proxy_and_loopback_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example,.svc.cluster.local")
    options = HttpOptions()
    assert proxy_for("https", "api.openai.com", 443, options) is not None
    assert proxy_for("https", "internal.example", 443, options) is None
    assert proxy_for("https", "sglang.models.svc.cluster.local", 443, options) is None
    assert proxy_for("https", "127.0.0.1", 443, options) is None
    assert proxy_for("https", "localhost", 443, options) is None
    assert proxy_for("http", "api.openai.com", 80, options) is None  # HTTP_PROXY is not set
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.corp:1080")
    with pytest.raises(errors.InvalidInput, match="expected an http:// proxy URL") as caught:
        proxy_for("https", "api.openai.com", 443, options)
    assert caught.value.field == "HTTPS_PROXY"


async def test_no_proxy_really_bypasses_and_an_unknown_name_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    async with ChatServer() as origin, ForwardProxy({TEST_HOST: origin.port}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", TEST_HOST)
        with pytest.raises(errors.NameResolutionError, match=r"cannot resolve the host name 'model.test'") as caught:
            await HttpPool(f"http://{TEST_HOST}:8000/v1").request("GET", "/models")
    assert caught.value.fatal and proxy.seen == []


# --- TLS --------------------------------------------------------------------------------------------
async def test_private_ca_trusted_with_a_ca_bundle(tmp_path: Path) -> None:
    ca = private_ca(tmp_path)
    async with ChatServer(tls=ca.server_context()) as origin:
        pool = HttpPool(f"https://127.0.0.1:{origin.port}/v1", options=HttpOptions(ca_bundle=str(ca.ca_pem)))
        assert (await pool.request("POST", "/chat/completions", BODY)).status == 200
        await pool.close()


async def test_private_ca_trusted_through_ssl_cert_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = private_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_pem))
    async with ChatServer(tls=ca.server_context()) as origin:
        pool = HttpPool(f"https://127.0.0.1:{origin.port}/v1")
        assert (await pool.request("POST", "/chat/completions", BODY)).status == 200
        await pool.close()


async def test_untrusted_certificate_is_fatal_and_tried_once(tmp_path: Path) -> None:
    ca = private_ca(tmp_path)
    async with ChatServer(tls=ca.server_context()) as origin:
        router = EndpointRouter([f"https://127.0.0.1:{origin.port}/v1"], "m", [DynamicLimiter(1)],
                                retry=RetryPolicy(max_attempts=6, initial_backoff=0.01))
        async with router:
            with pytest.raises(errors.FatalInferenceError, match=r"is not trusted ") as caught:
                await router.complete(BODY)
        # the hint names the setting as data (kept through the wrapping): the CLI shows its option
        assert caught.value.mentions == ("ca_bundle",)
        assert message_for(caught.value).endswith("; for a private CA pass --ca-bundle FILE (or set SSL_CERT_FILE)")
        await origin.settled()
    assert (origin.connections, origin.handshakes_failed, origin.requests) == (1, 1, [])


def test_the_retry_wait_is_the_servers_retry_after_else_an_exponential_backoff_with_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=30.0)
    assert policy.wait(errors.RetryableInferenceError("HTTP 429", cause="rate_limited", retry_after=7.0), 1) == 7.0
    error = errors.RetryableInferenceError("HTTP 503", cause="server_error")
    assert 0.5 <= policy.wait(error, 1) <= 1.5 and 2.0 <= policy.wait(error, 3) <= 3.0
    assert policy.wait(error, 20) == 30.0


def test_a_bad_ca_bundle_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="no such file") as missing:
        HttpOptions(ca_bundle=str(tmp_path / "nope.pem")).check()
    assert missing.value.field == "ca_bundle"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(errors.InvalidInput, match="is not a PEM file of CA certificates"):
        HttpOptions(ca_bundle=str(junk)).check()


# --- connecting -------------------------------------------------------------------------------------
async def test_dns_failure_is_fatal_for_the_chat_client() -> None:
    client = ChatClient("http://anesbench-nowhere.invalid:8000/v1", "m")
    with pytest.raises(errors.FatalInferenceError, match=r"cannot resolve the host name 'anesbench-nowhere.invalid'"):
        await client.attempt(BODY)
    await client.close()


async def test_connect_timeout_is_separate_from_the_request_deadline() -> None:
    # A listener whose accept queue is full: the kernel drops further SYNs, so connecting hangs.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    pool = HttpPool(f"http://127.0.0.1:{port}/v1", timeout=600, options=HttpOptions(connect_timeout=0.5))
    with pytest.raises(errors.ConnectTimeout, match=r"no connection within 0.5 s") as caught:
        await pool.request("GET", "/models")
    assert caught.value.retryable and not caught.value.fatal
    for sock in (*fillers, listener):
        sock.close()


# --- keep-alive -------------------------------------------------------------------------------------
async def test_server_closing_idle_connections_after_1s_does_not_fail_the_next_request() -> None:
    async with ChatServer(idle_close=1.0) as origin:
        pool = HttpPool(f"http://127.0.0.1:{origin.port}/v1")
        assert (await pool.request("POST", "/chat/completions", BODY)).status == 200
        await eventually(lambda: origin.closed == 1, "the server to close the idle connection")
        assert (await pool.request("POST", "/chat/completions", BODY)).status == 200
        await pool.close()
    assert (origin.connections, len(origin.requests)) == (2, 2)


async def test_a_close_crossing_the_next_request_is_retried_once_on_a_new_connection() -> None:
    """The race behind "the next request fails": the server closes (without answering) as we send."""
    connections = 0

    async def closes_second_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            await read_head(reader)  # the next request on this connection: drop it, as an idle-close race would
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(closes_second_request, "127.0.0.1", 0)
    pool = HttpPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", size=1)
    for n in range(3):
        if n:
            await asyncio.sleep(0.7)  # idle past STALE_AFTER: the time, not an event, is what the pool acts on
        assert (await pool.request("POST", "/chat/completions", BODY)).body == b"{}"
    assert connections == 3  # requests 2 and 3 each found their connection dropped and went on a new one
    await pool.close()
    server.close()


async def test_keep_alive_timeout_hint_expires_connections_before_the_server_does() -> None:
    connections = 0

    async def hints(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                await read_head(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(hints, "127.0.0.1", 0)
    pool = HttpPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1")
    await pool.request("GET", "/a")
    await pool.request("GET", "/b")  # at once: reused
    await asyncio.sleep(0.7)  # past half the hinted 1 s: expired on our side
    await pool.request("GET", "/c")
    assert connections == 2
    await pool.close()
    server.close()


# --- bodies -----------------------------------------------------------------------------------------
async def test_a_reset_in_the_middle_of_a_close_delimited_body_is_an_error() -> None:
    async def resets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"choices": [{"mess')
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
        writer.transport.abort()

    server = await asyncio.start_server(resets, "127.0.0.1", 0)
    pool = HttpPool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1")
    with pytest.raises(errors.ReadError, match="broke in the middle of the response body"):
        await pool.request("POST", "/chat/completions", BODY)
    server.close()


# --- credentials and headers ------------------------------------------------------------------------
async def test_url_credentials_are_sent_as_basic_auth() -> None:
    async with ChatServer() as origin:
        pool = HttpPool(f"http://user:p%40ss@127.0.0.1:{origin.port}/v1")
        assert (await pool.request("POST", "/chat/completions", BODY)).status == 200
        await pool.close()
    assert origin.requests[0][1]["authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert origin.requests[0][1]["host"] == f"127.0.0.1:{origin.port}"


def test_url_credentials_and_an_api_key_are_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="give only one of them") as caught:
        HttpPool("http://user:pw@127.0.0.1:1/v1", api_key="k")
    assert caught.value.field == "endpoints"


@pytest.mark.parametrize("key", ["k\r\nX-Injected: 1", "k\nX: 1", "k\x00", "ключ"])
def test_header_values_are_validated(key: str) -> None:
    with pytest.raises(errors.InvalidInput, match="the Authorization header value"):
        HttpPool("http://127.0.0.1:1/v1", api_key=key)
