"""A discrete-event model of a heavy-tailed run: how much does the sending order matter, and when
does the harness's own CPU per reply start to matter? (No sockets, no clock; runs in a second.)

    .venv/bin/python bench/schedule_model.py

8,854 requests with lognormal service times (σ 1.0 per question, mean 200 ms, capped at 25×), a
second model's times differing by a lognormal factor of σ 0.3; 256 slots with a FIFO queue and
slots + 10 % in flight, as the engine keeps them. The harness is modelled as one CPU that spends
``cpu`` seconds on every reply before it sends the next request. Printed: span ÷ lower bound
(max(work ÷ slots, longest)) for file order, for strictly longest-expected-first from the first
model's history, and for the engine's order (:class:`anesbench.engine.runner.Ordering`).
"""

from __future__ import annotations

import collections
import heapq
import math
import random

from anesbench.engine.runner import long_head_then_mixed

REQUESTS, SLOTS, MEAN, CAP = 8854, 256, 0.2, 25.0


def lognormal(rng: random.Random, sigma: float) -> float:
    return math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2)


def service_times(question: list[float], seed: int) -> list[float]:
    rng = random.Random(seed)
    return [min(MEAN * q * lognormal(rng, 0.3), CAP * MEAN) for q in question]


def span(order: list[int], times: list[float], cpu: float, inflight: int = SLOTS + 26) -> float:
    events: list[tuple[float, int, int]] = []  # (time, 0 = done | 1 = arrives, request)
    queue: collections.deque[int] = collections.deque()
    pending = iter(order)
    running, cpu_free, last = 0, 0.0, 0.0
    for _ in range(inflight):
        heapq.heappush(events, (0.0, 1, next(pending)))
    while events:
        now, kind, request = heapq.heappop(events)
        if kind == 1:
            if running < SLOTS:
                running += 1
                heapq.heappush(events, (now + times[request], 0, request))
            else:
                queue.append(request)
            continue
        running -= 1
        last = now
        if queue:
            running += 1
            waiting = queue.popleft()
            heapq.heappush(events, (now + times[waiting], 0, waiting))
        cpu_free = max(cpu_free, now) + cpu
        following = next(pending, None)
        if following is not None:
            heapq.heappush(events, (cpu_free, 1, following))
    return last


def main() -> None:
    rng = random.Random(1)
    question = [lognormal(rng, 1.0) for _ in range(REQUESTS)]
    history, current = service_times(question, 11), service_times(question, 22)
    bound = max(sum(current) / SLOTS, max(current))
    file_order = list(range(REQUESTS))
    longest_first = sorted(file_order, key=lambda i: -history[i])
    engine = long_head_then_mixed(longest_first, history)
    print("harness CPU per reply | file order | strictly longest first | the engine's order (long head, then mixed)")
    for cpu in (0.0, 0.0002, 0.0003, 0.0004, 0.0005, 0.0006, 0.001):
        print(f"{cpu * 1000:.1f} ms | {span(file_order, current, cpu) / bound:.3f} "
              f"| {span(longest_first, current, cpu) / bound:.3f} | {span(engine, current, cpu) / bound:.3f}")


if __name__ == "__main__":
    main()
