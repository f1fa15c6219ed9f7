"""MultiConnectionGrader: separate connections, so that the replicas behind one address all get work."""

from __future__ import annotations

import asyncio
import urllib.request

from anesbench.grader.client import MultiConnectionGrader
from tests.procs import start_grader


def _graded(metrics_address: str) -> float:
    text = urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("anesbench_grader_items_total{"))


def _established(port: int) -> int:
    """Established TCP connections to ``port`` (gRPC may use IPv4-mapped IPv6 sockets: read both tables)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name, encoding="ascii") as table:
            for row in table.readlines()[1:]:
                fields = row.split()
                if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    count += 1
    return count


def test_pool_uses_one_connection_per_member_and_answers_everything() -> None:
    grader, metrics = start_grader()
    port = int(grader.address.rsplit(":", 1)[1])
    try:
        async def scenario() -> None:
            pool = MultiConnectionGrader(grader.address, connections=3)
            choices = {"A": "Propofol", "B": "Ketamine", "C": "Etomidate"}
            results = await asyncio.gather(*(pool.grade(choices, f"The answer is {'ABC'[n % 3]}.", "stop")
                                             for n in range(300)))
            assert [r.pred for r in results] == ["ABC"[n % 3] for n in range(300)]
            assert _established(port) == 3
            await pool.close()

        asyncio.run(scenario())
        assert _graded(metrics) == 300
    finally:
        grader.stop()
