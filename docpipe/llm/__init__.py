"""The LLM gateway: every model call of docpipe goes through a client of this package.

`open_llm(cfg, cache_dir)` picks the backend (litellm, a local GGUF, the packaged model) and
wraps it in a `Gateway`; the backends' heavy packages are imported only when chosen.
"""

from docpipe.llm.factory import open_llm

__all__ = ["open_llm"]
