"""Client for OpenAI-compatible chat completion servers (SGLang, vLLM, KServe, hosted APIs)."""

from anesbench.inference.client import ChatClient, Completion, GenerationParams
from anesbench.inference.credentials import load_api_key
from anesbench.inference.endpoint import public_endpoint, validate_endpoint

__all__ = [
    "ChatClient",
    "Completion",
    "GenerationParams",
    "load_api_key",
    "public_endpoint",
    "validate_endpoint",
]
