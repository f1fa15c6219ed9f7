"""``anesbench run`` against hosted-API conditions, end to end: a private CA, proxies from the
environment, credentials in the URL, a key that would inject headers. The servers run in the test's
event loop on 127.0.0.1; the CLI is a real child process."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, make_records
from tests.nettools import TEST_HOST, ChatServer, ConnectProxy, ForwardProxy, private_ca

SCRUB = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "all_proxy",
         "SSL_CERT_FILE", "ANESBENCH_API_KEY", "OPENAI_API_KEY", "ANESBENCH_API_KEY_FILE")
ITEMS = 3


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    return {**env, **extra}


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "anesbench.cli.main", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def dataset(write_jsonl: Callable[..., Path]) -> Path:
    return write_jsonl(make_records(ITEMS))


def _chats(origin: ChatServer) -> list[tuple[str, dict[str, str]]]:
    """The chat requests (not the preflight's GET /health and /v1/models)."""
    return [request for request in origin.requests if request[0].startswith("POST ")]


def _run_args(endpoint: str, dataset: Path, db: Path, *extra: str) -> list[str]:
    return ["run", "--endpoint", endpoint, "--model", "m", "--dataset", str(dataset), "--db", str(db),
            "--concurrency", "1", "--no-progress", *extra]


async def test_a_private_ca_is_trusted_with_ca_bundle(tmp_path: Path, dataset: Path) -> None:
    ca = private_ca(tmp_path)
    async with ChatServer(tls=ca.server_context()) as origin:
        code, out, err = await _cli(*_run_args(f"https://127.0.0.1:{origin.port}/v1", dataset, tmp_path / "a.duckdb",
                                               "--ca-bundle", str(ca.ca_pem)), env=_env())
    assert code == 0, err
    assert f"status=completed done={ITEMS} total={ITEMS}" in out
    assert len(_chats(origin)) == ITEMS and origin.handshakes_failed == 0


async def test_an_untrusted_certificate_fails_the_run_at_once_without_retries(tmp_path: Path, dataset: Path) -> None:
    ca = private_ca(tmp_path)
    async with ChatServer(tls=ca.server_context()) as origin:
        code, _out, err = await _cli(*_run_args(f"https://127.0.0.1:{origin.port}/v1", dataset,
                                                tmp_path / "b.duckdb"), env=_env())
        await origin.settled()
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not trusted" in errors[0], err
    assert errors[0].endswith("; for a private CA pass --ca-bundle FILE (or set SSL_CERT_FILE)"), err
    assert "Traceback" not in err
    # one handshake for the whole run: not 6 attempts per item as if it were transient
    assert (origin.connections, origin.handshakes_failed, origin.requests) == (1, 1, [])


async def test_a_plain_http_endpoint_goes_through_http_proxy(tmp_path: Path, dataset: Path) -> None:
    async with ChatServer() as origin, ForwardProxy({TEST_HOST: origin.port}) as proxy:
        code, _out, err = await _cli(*_run_args(f"http://{TEST_HOST}:8000/v1", dataset, tmp_path / "p.duckdb"),
                                     env=_env(HTTP_PROXY=proxy.url, NO_PROXY="example.org"))
    assert code == 0, err
    # The preflight goes the same way as the run: /health and /v1/models through the proxy too.
    assert proxy.seen == [f"GET http://{TEST_HOST}:8000/health HTTP/1.1", f"GET http://{TEST_HOST}:8000/v1/models HTTP/1.1",
                          *[f"POST http://{TEST_HOST}:8000/v1/chat/completions HTTP/1.1"] * ITEMS]
    assert len(_chats(origin)) == ITEMS


async def test_an_https_endpoint_goes_through_a_connect_tunnel(tmp_path: Path, dataset: Path) -> None:
    ca = private_ca(tmp_path)
    async with ChatServer(tls=ca.server_context()) as origin, ConnectProxy({TEST_HOST: origin.port}) as proxy:
        code, _out, err = await _cli(*_run_args(f"https://{TEST_HOST}/v1", dataset, tmp_path / "t.duckdb",
                                                "--ca-bundle", str(ca.ca_pem)),
                                     env=_env(HTTPS_PROXY=proxy.url, HTTP_PROXY="http://127.0.0.1:9"))
    assert code == 0, err
    # One tunnel for the preflight, one for the run (--concurrency 1: kept alive for every item).
    assert proxy.seen == [f"CONNECT {TEST_HOST}:443 HTTP/1.1"] * 2
    assert len(_chats(origin)) == ITEMS


async def test_url_credentials_are_sent_as_basic_auth_and_never_stored(tmp_path: Path, dataset: Path) -> None:
    db = tmp_path / "c.duckdb"
    async with ChatServer() as origin:
        code, _out, err = await _cli(*_run_args(f"http://alice:s3cr%40t@127.0.0.1:{origin.port}/v1", dataset, db),
                                     env=_env())
    assert code == 0, err
    expected = "Basic " + base64.b64encode(b"alice:s3cr@t").decode()
    # every request, the preflight's two included
    assert [headers.get("authorization") for _, headers in origin.requests] == [expected] * (ITEMS + 2)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT endpoint FROM runs").fetchall() == [(f"http://127.0.0.1:{origin.port}/v1",)]


async def test_url_credentials_with_an_api_key_as_well_are_bad_input(tmp_path: Path, dataset: Path) -> None:
    db = tmp_path / "d.duckdb"
    code, _out, err = await _cli(*_run_args("http://alice:pw@127.0.0.1:9/v1", dataset, db),
                                 env=_env(ANESBENCH_API_KEY="sk-test"))
    assert code == 2
    assert err == ("error: --endpoint: the URL holds credentials (sent as Basic auth) and an API key is set as "
                   "well; give only one of them\n")
    assert not db.exists()


@pytest.mark.parametrize("key", ["sk-a\r\nX-Injected: 1", "sk-a\nHost: evil", "sk-\x1b[0ma"])
async def test_an_api_key_with_cr_lf_is_bad_input_and_nothing_is_sent(tmp_path: Path, dataset: Path,
                                                                     key: str) -> None:
    db = tmp_path / "e.duckdb"
    async with ChatServer() as origin:
        code, _out, err = await _cli(*_run_args(f"http://127.0.0.1:{origin.port}/v1", dataset, db),
                                     env=_env(ANESBENCH_API_KEY=key))
    assert code == 2
    assert err == ("error: $ANESBENCH_API_KEY: the key contains a line break or control character "
                   "(a key is one line)\n")
    assert not db.exists() and origin.connections == 0


async def test_a_missing_ca_bundle_is_bad_input(tmp_path: Path, dataset: Path) -> None:
    db = tmp_path / "f.duckdb"
    code, _out, err = await _cli(*_run_args("https://127.0.0.1:9/v1", dataset, db, "--ca-bundle",
                                            str(tmp_path / "none.pem")), env=_env())
    assert code == 2
    assert err == f"error: --ca-bundle: no such file: {tmp_path / 'none.pem'}\n"
    assert not db.exists()
