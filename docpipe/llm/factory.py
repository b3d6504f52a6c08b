"""From LLMConfig.model to a Gateway: 'none', 'auto' (the packaged model), a .gguf path, or a
litellm model string. Backends are imported here, only once chosen."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from docpipe.config import LLMConfig
from docpipe.llm.gateway import Gateway
from docpipe.llm.providers import Provider
from docpipe.runtime import packaged


def open_llm(cfg: LLMConfig, cache_dir: Path | None) -> Gateway | None:
    """The gateway for `cfg.model`, or None when no model is to be used (the extractive generator alone).

    Raises:
        ImportError: the backend's extra is not installed (the message names it).
        FileNotFoundError: a .gguf path that does not exist.
        PackagedModelError: the packaged model's file does not match its pinned hash.
    """
    provider = _provider(cfg)
    return None if provider is None else Gateway(provider, cache_dir=cache_dir, config=cfg)


def _provider(cfg: LLMConfig) -> Provider | None:
    name = cfg.model.strip()
    if name.lower() == "none":
        return None
    if name.lower() == "auto":
        return _packaged(cfg)
    if name.lower().endswith(".gguf"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"llm.model: no GGUF file at {path}")
        return _local(path, cfg, model_id=None)
    module = importlib.import_module("docpipe.llm.litellm_provider")
    return module.LiteLLMProvider(name, api_base=cfg.api_base)


def _packaged(cfg: LLMConfig) -> Provider | None:
    """The packaged SmolLM2 when it and llama-cpp-python are installed; else None (no model)."""
    if importlib.util.find_spec("llama_cpp") is None or packaged.packaged_model_path() is None:
        return None
    return _local(packaged.verified_model_path(), cfg, model_id=packaged.MODEL_ID)


def _local(path: Path, cfg: LLMConfig, model_id: str | None) -> Provider:
    module = importlib.import_module("docpipe.llm.local_provider")
    return module.LocalProvider(path, model_id=model_id, context_tokens=cfg.context_tokens, threads=cfg.threads, seed=cfg.seed)
