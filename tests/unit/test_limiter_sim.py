"""The adaptive limiter's policy against a simulated serving engine (a deterministic discrete-event model).

No clock and no sockets: the model has ``slots`` decode slots, a FIFO queue in front of them, a
service time per request, and optionally rejects (429) requests above some load. The client keeps
``policy.limit`` requests in flight, exactly as the engine's workers do.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from anesbench.inference.sizing import START_LIMIT, AdaptiveLimiter
from anesbench.limiter import SlowStart


@dataclass
class Outcome:
    efficiency: float  # slot-seconds used ÷ (slots × span), 1.0 = every slot busy from first request to last
    limits: list[int] = field(default_factory=list)  # the limit after every completion
    rejected: int = 0


def simulate(requests: int, slots: int, service: Callable[[int], float], policy: SlowStart,
             reject_above: int | None = None, retry_after: float = 0.05) -> Outcome:
    events: list[tuple[float, int, str, int, float, int]] = []  # (time, seq, kind, request, sent at, in flight)
    queue: deque[tuple[int, float, int]] = deque()
    seq = running = inflight = sent = 0
    now = work = last = 0.0
    outcome = Outcome(0.0)

    def push(at: float, kind: str, request: int, sent_at: float, level: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, request, sent_at, level))

    def admit(request: int, level: int) -> None:
        nonlocal running
        if reject_above is not None and level > reject_above:
            push(now + 0.001, "rejected", request, now, level)
        elif running < slots:
            running += 1
            push(now + service(request), "done", request, now, level)
        else:
            queue.append((request, now, level))

    def fill(pending: deque[int]) -> None:
        nonlocal inflight, sent
        while pending and inflight < policy.limit:
            inflight += 1
            sent += 1
            admit(pending.popleft(), inflight)

    pending = deque(range(requests))
    fill(pending)
    while events:
        now, _, kind, request, sent_at, level = heapq.heappop(events)
        if kind == "retry":
            pending.appendleft(request)
        elif kind == "rejected":
            inflight -= 1
            outcome.rejected += 1
            policy.overloaded()
            push(now + retry_after, "retry", request, now, 0)  # the engine retries it after a backoff
        else:
            inflight -= 1
            running -= 1
            work += service(request)
            last = now
            if queue:
                waiting, waited_since, waiting_level = queue.popleft()
                running += 1
                push(now + service(waiting), "done", waiting, waited_since, waiting_level)
            policy.observe(now - sent_at, level)
        outcome.limits.append(policy.limit)
        fill(pending)
    outcome.efficiency = work / slots / last
    return outcome


def jittered(mean: float, jitter: float, count: int, seed: int = 3) -> Callable[[int], float]:
    rng = random.Random(seed)
    times = [mean + rng.uniform(-jitter, jitter) for _ in range(count)]
    return times.__getitem__


def test_slow_start_fills_256_slots_quickly_and_settles_just_above_them() -> None:
    # The job: 8,854 requests, 256 slots x 200 ms, a server that does not report its slots.
    policy = SlowStart(START_LIMIT, 1024)
    outcome = simulate(8854, 256, jittered(0.2, 0.02, 8854), policy)
    assert outcome.efficiency >= 0.95
    assert max(outcome.limits[:400]) >= 256  # multiplicative growth: above the knee within ~2 round trips
    settled = outcome.limits[len(outcome.limits) // 2:]
    assert all(230 <= limit <= 320 for limit in settled)  # slots plus a short queue, not the overshoot
    assert policy.estimate is not None and 200 <= policy.estimate <= 280


def test_growth_is_multiplicative_while_latency_is_flat() -> None:
    policy = SlowStart(16, 4096)
    outcome = simulate(20000, 4096, jittered(0.2, 0.0, 20000), policy)  # never queues
    assert outcome.limits == sorted(outcome.limits)  # never shrinks
    # 16 -> 4096 is 8 doublings; the completions that takes are about the sum of the limits on the way
    # (< 2 x 4096), where additive growth would need millions.
    assert outcome.limits.index(4096) < 2 * 4096
    assert policy.slow_start and policy.estimate is None


def test_queueing_delay_brings_an_oversized_start_down_to_the_server_slots() -> None:
    policy = SlowStart(512, 1024)
    outcome = simulate(4000, 64, jittered(0.2, 0.02, 4000), policy)
    assert not policy.slow_start
    assert all(limit <= 100 for limit in outcome.limits[-1000:])
    assert outcome.efficiency >= 0.95  # backing off never starves the server


def test_429_cuts_the_limit_once_per_round_trip() -> None:
    policy = SlowStart(64, 1024)
    outcome = simulate(8854, 256, jittered(0.2, 0.02, 8854), policy, reject_above=200)
    assert outcome.rejected > 0
    tail = outcome.limits[-2000:]
    assert max(tail) <= 230 and min(tail) >= 120  # a saw-tooth just under what the server accepts
    assert outcome.efficiency >= 0.65  # the server only ever takes 200: 200/256 is the best possible
    cut = SlowStart(100, 1024)
    cut.slow_start = False
    assert cut.overloaded() == 70
    assert cut.overloaded() is None  # a burst of 429s is one signal


def test_a_small_server_is_not_flooded() -> None:
    policy = SlowStart(START_LIMIT, 1024)
    outcome = simulate(600, 4, jittered(0.2, 0.02, 600), policy)
    assert outcome.limits[-1] <= 32
    assert outcome.efficiency >= 0.95


def test_adaptive_limiter_applies_the_policy() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(start=16, maximum=512)
        for _ in range(16):
            limiter.observe(0.2, inflight=16)
        assert limiter.limit == 64  # flat latency: four times the level the window was sent at
        limiter.overloaded()
        assert limiter.limit == round(64 * SlowStart.BACKOFF)
        await asyncio.sleep(0)

    asyncio.run(scenario())
