"""Concurrency control: the dynamic limiter, fair shares between runs, and automatic sizing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from anesbench.dispatcher.runs import EndpointShares, settle
from anesbench.engine.config import DEFAULT_CONCURRENCY, RunConfig
from anesbench.errors import RetryableInferenceError
from anesbench.inference.client import ChatClient
from anesbench.inference.sizing import MAX_LIMIT, AdaptiveLimiter, headroom, server_slots
from anesbench.limiter import DynamicLimiter, SlowStart
from tests.waiting import eventually


async def test_limiter_never_exceeds_its_limit_even_when_lowered() -> None:
    limiter = DynamicLimiter(8)
    peak = 0

    async def job() -> None:
        nonlocal peak
        async with limiter.slots():
            peak = max(peak, limiter.inflight)
            await asyncio.sleep(0.005)

    await asyncio.gather(*(job() for _ in range(40)))
    assert peak == 8
    limiter.set_limit(3)
    peak = 0
    await asyncio.gather(*(job() for _ in range(30)))
    assert peak == 3 and limiter.inflight == 0


async def test_raising_the_limit_wakes_waiters() -> None:
    limiter = DynamicLimiter(1)
    gate = asyncio.Event()
    arrived = running = 0

    async def job() -> None:
        nonlocal arrived, running
        arrived += 1  # nothing awaits between here and the limiter: an arrived job holds a slot or waits
        async with limiter.slots():
            running += 1
            await gate.wait()

    tasks = [asyncio.create_task(job()) for _ in range(4)]
    await eventually(lambda: arrived == 4, "all four jobs reach the limiter")
    assert running == 1
    limiter.set_limit(4)
    await eventually(lambda: running == 4, "the raised limit wakes the three waiters")
    gate.set()
    await asyncio.gather(*tasks)


async def test_fair_shares_water_fill_the_endpoint() -> None:
    shares = EndpointShares()
    a = shares.join("http://e/v1", "a", 90)
    assert a.limit == 90
    b = shares.join("http://e/v1", "b", 90)
    assert (a.limit, b.limit) == (45, 45)
    c = shares.join("http://e/v1", "c", 10)
    assert (c.limit, a.limit + b.limit) == (10, 80)
    other = shares.join("http://other/v1", "d", 5)
    assert other.limit == 5
    shares.leave("http://e/v1", "c")
    shares.leave("http://e/v1", "b")
    assert a.limit == 90


def test_adaptive_limit_grows_while_latency_is_flat_and_shrinks_when_it_rises() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(start=16, maximum=512)
        for _ in range(200):
            limiter.observe(0.2)
        grown = limiter.limit
        assert grown > 16
        for _ in range(2000):
            limiter.observe(0.8)  # queueing: four times the best latency
        assert limiter.limit < grown
        before = limiter.limit
        limiter.overloaded()
        await asyncio.sleep(0)  # one loop step: set_limit's notification task runs (nothing waits on it)
        assert limiter.limit == max(1, int(before * 0.7))

    asyncio.run(scenario())


def test_a_fixed_limiter_ignores_observations_and_its_maximum_is_its_limit() -> None:
    limiter = DynamicLimiter(8)
    for latency in (0.2,) * 200 + (0.8,) * 2000:
        limiter.observe(latency, 8)
    limiter.overloaded()
    assert (limiter.limit, limiter.maximum) == (8, 8)
    limiter.set_limit(3)  # a fair share changing
    assert (limiter.limit, limiter.maximum) == (3, 3)


def test_an_adaptive_limiters_maximum_is_its_ceiling_not_its_limit() -> None:
    limiter = AdaptiveLimiter(start=16, maximum=512)
    assert (limiter.limit, limiter.maximum) == (16, 512)
    limiter.overloaded()
    assert (limiter.limit, limiter.maximum) == (round(16 * SlowStart.BACKOFF), 512)


@pytest.mark.parametrize(("make", "after"), [(lambda: DynamicLimiter(64), 64),
                                             (lambda: AdaptiveLimiter(start=64), round(64 * SlowStart.BACKOFF))])
def test_the_router_reports_a_429_to_either_limiter_and_only_the_adaptive_one_backs_off(
    make: Callable[[], DynamicLimiter], after: int
) -> None:
    endpoint = ChatClient("http://127.0.0.1:9/v1", "m", make())
    endpoint.record(RetryableInferenceError("429", cause="rate_limited"), None, 64)
    assert endpoint.limiter.limit == after
    endpoint.record(RetryableInferenceError("reset", cause="connection_error"), None, 64)
    assert endpoint.limiter.limit == after  # not an overload: the limit stays


@contextlib.asynccontextmanager
async def _json_server(routes: dict[str, object]) -> AsyncIterator[str]:
    """A server on 127.0.0.1 answering GET ``path`` with the JSON ``payload``; yields its root URL."""
    app = web.Application()
    for path, payload in routes.items():
        async def handler(request: web.Request, payload: object = payload) -> web.Response:
            return web.json_response(payload)

        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [({"max_running_requests": 256}, 256), ({"max_running_requests": 64, "dp_size": 4}, 256),
     ({"internal_states": [{"max_running_requests": 48}]}, 48), ({"other": 1}, None)],
)
async def test_server_slots_reads_sglang_server_info(payload: dict, expected: int | None) -> None:
    async with _json_server({"/get_server_info": payload}) as base:
        assert await server_slots(f"{base}/v1") == expected
    assert await server_slots("http://127.0.0.1:9/v1") is None
    assert headroom(256) == 26 and headroom(16) == 8


async def test_a_dispatcher_run_gets_the_servers_slots_plus_headroom_and_shares_the_endpoint() -> None:
    shares = EndpointShares()
    async with _json_server({"/get_server_info": {"max_running_requests": 256}}) as base:
        config = RunConfig(model="m", endpoints=(f"{base}/v1",))
        sized, wanted = await settle(config, None)
        first = shares.join(sized.endpoint, "a", wanted)
        assert (sized.concurrency, first.limit) == (256 + 26, 282)
        _, wanted = await settle(config, None)
        second = shares.join(config.endpoint, "b", wanted)
    assert (first.limit, second.limit) == (141, 141)
    shares.leave(config.endpoint, "b")
    assert first.limit == 282


async def test_a_dispatcher_run_on_a_silent_server_is_left_to_the_adaptive_limiter_or_fixed_when_asked() -> None:
    async with _json_server({}) as base:
        config = RunConfig(model="m", endpoints=(f"{base}/v1",))
        adaptive, share = await settle(config, None)
        assert (adaptive.concurrency, share) == (None, MAX_LIMIT)  # the share only caps the engine's
        fixed, share = await settle(config, None, unknown_slots=DEFAULT_CONCURRENCY)
        assert (fixed.concurrency, share) == (DEFAULT_CONCURRENCY, DEFAULT_CONCURRENCY)
    given, share = await settle(dataclasses.replace(config, concurrency=5), None)
    assert (given.concurrency, share) == (5, 5)  # not asked: nothing listens on the port now


async def test_weighted_places_are_first_come_first_served_and_a_cancelled_waiter_gives_back() -> None:
    limiter = DynamicLimiter(4)
    await limiter.acquire(3)
    heavy = asyncio.create_task(limiter.acquire(2))  # does not fit yet
    light = asyncio.create_task(limiter.acquire(1))  # would fit, but waits its turn behind the heavy one
    await asyncio.sleep(0)
    assert not heavy.done() and not light.done() and limiter.inflight == 3
    limiter.release(3)
    await asyncio.sleep(0)
    assert heavy.done() and light.done() and limiter.inflight == 3
    limiter.release(2)
    limiter.release(1)
    await limiter.acquire(10)  # heavier than the whole limit: goes alone on an idle limiter
    waiter = asyncio.create_task(limiter.acquire(1))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    limiter.release(10)
    assert limiter.inflight == 0
    async with limiter.slots(4):
        assert limiter.inflight == 4
    assert limiter.inflight == 0


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ({"/props": {"total_slots": 4}}, 4),  # llama.cpp: --parallel 4
        ({"/get_server_info": {"max_running_requests": 32}, "/props": {"total_slots": 4}}, 32),  # SGLang first
        ({"/get_server_info": {"other": 1}, "/props": {"total_slots": 6}}, 6),
        ({"/props": {"total_slots": 0}}, None),
        ({"/props": {"total_slots": True}}, None),
        ({"/props": ["total_slots"]}, None),
    ],
)
async def test_server_slots_reads_llamacpp_props(routes: dict, expected: int | None) -> None:
    async with _json_server(routes) as base:
        assert await server_slots(f"{base}/v1") == expected
