"""What an HTTP client costs the harness per request: the lean client against httpx and aiohttp.

The same chat-completion POST, keep-alive, ``--concurrency`` in flight, against a minimal HTTP/1.1
server in a separate process (so the server's CPU is not counted). Reported per client: CPU time of
the client process per request, on uvloop as the harness runs (what competes with prompt rendering,
grading and storage, and with an inference server on the same machine), and requests per second.

    .venv/bin/python bench/http_clients.py [--requests 5000] [--concurrency 32] [--rounds 3]

Prints a Markdown table (the figures in docs/performance.md, "HTTP client").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

from anesbench import event_loop

SERVER = r"""
import asyncio, sys
BODY = (b'{"choices":[{"message":{"content":"The answer is A."},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":5,"completion_tokens":4}}')
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
class P(asyncio.Protocol):
    def connection_made(self, t): self.t, self.buf = t, b""
    def data_received(self, d):
        self.buf += d
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0: return
            head = self.buf[:end].lower(); n = 0
            i = head.find(b"content-length:")
            if i >= 0: n = int(head[i + 15:].split(b"\r\n", 1)[0])
            if len(self.buf) < end + 4 + n: return
            self.buf = self.buf[end + 4 + n:]
            self.t.write(REPLY)
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""

PAYLOAD = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Question 1: which drug? " * 20}],
                      "max_tokens": 2048, "temperature": 0.0, "stream": False}).encode()
Send = Callable[[], Awaitable[int]]


async def _lean(base: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from anesbench.inference.transport import HttpPool

    pool = HttpPool(base, size=concurrency, api_key="k")

    async def send() -> int:
        return (await pool.request("POST", "/chat/completions", PAYLOAD)).status

    return send, pool.close


async def _httpx(base: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(base_url=base, headers={"Authorization": "Bearer k"}, trust_env=True,
                               limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))

    async def send() -> int:
        response = await client.post("/chat/completions", content=PAYLOAD, headers={"Content-Type": "application/json"})
        return response.status_code

    return send, client.aclose


async def _aiohttp(base: str, concurrency: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(base_url=base.rstrip("/") + "/", headers={"Authorization": "Bearer k"},
                                    connector=aiohttp.TCPConnector(limit=concurrency), trust_env=True)

    async def send() -> int:
        async with session.post("chat/completions", data=PAYLOAD, headers={"Content-Type": "application/json"}) as r:
            await r.read()
            return r.status

    return send, session.close


CLIENTS = {"anesbench lean (httptools)": _lean, "httpx AsyncClient": _httpx, "aiohttp ClientSession": _aiohttp}


async def _measure(make: Callable[..., Awaitable[tuple[Send, Callable[[], Awaitable[None]]]]], base: str,
                   requests: int, concurrency: int) -> tuple[float, float]:
    send, close = await make(base, concurrency)
    for _ in range(concurrency):  # warm up: open the connections
        assert await send() == 200
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            assert await send() == 200

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await close()
    return cpu / requests * 1e6, requests / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{server.stdout.readline().strip()}/v1"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            os.environ.pop(name, None)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
        for _ in range(args.rounds):  # interleaved, so that machine load hits every client alike
            for name, make in CLIENTS.items():
                results[name].append(event_loop.run(_measure(make, base, args.requests, args.concurrency)))
    finally:
        server.kill()
    lean_cpu = statistics.median(cpu for cpu, _ in results["anesbench lean (httptools)"])
    print(f"_{args.requests} POSTs x {args.rounds} rounds, {args.concurrency} in flight, keep-alive, "
          f"{os.cpu_count()} cores; medians_\n")
    print("| client | CPU µs / request | × lean | requests/s |")
    print("|:---|---:|---:|---:|")
    for name, values in results.items():
        cpu = statistics.median(c for c, _ in values)
        rate = statistics.median(r for _, r in values)
        print(f"| {name} | {cpu:.0f} | {cpu / lean_cpu:.1f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
