"""Client for OpenAI-compatible chat completion servers (SGLang, vLLM, KServe, hosted APIs)."""
