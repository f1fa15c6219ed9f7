"""KServe InferenceServices driven by the dispatcher: read, start, wait for Ready, stop.

``api`` talks to the Kubernetes API with the official ``kubernetes`` client off the event loop,
``pool`` keeps on-demand models up while runs need them, within a GPU budget. Nothing here is
imported by the CLI or the grader.
"""
