"""Resolve `--base-model` to a Hugging Face model folder, offline: a local folder, a model
already in the local Hugging Face cache (never downloaded), or a model shipped in a registry
package as a GGUF, converted once into an HF folder in the output folder's cache.

transformers dequantises a GGUF into float32 weights; the provenance (which file, which
quantisation) is recorded next to the converted folder, because a base dequantised from Q4
is not the original 16-bit model and later stages (merge, export) report it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docpipe.llm import packaged

DEFAULT_BASE = "smollm2-135m-instruct"
_PROVENANCE = "docpipe_base.json"


@dataclass(frozen=True)
class ResolvedBase:
    name: str  # what the user asked for
    path: Path  # a folder that AutoModelForCausalLM/AutoTokenizer.from_pretrained load
    source: str  # "local folder" | "hugging face cache" | "packaged gguf"
    sha256: str | None  # of the GGUF a packaged base was converted from
    dequantised_from: str | None  # e.g. "Q4_1": the weights are not the original 16-bit ones
    license: str | None


@dataclass(frozen=True)
class _Packaged:
    gguf: Callable[[], Path]  # the GGUF, verified against its pinned hash
    sha256: str
    quantisation: str
    license: str


# Bases that ship inside registry packages, usable on a machine with no network.
PACKAGED = {
    DEFAULT_BASE: _Packaged(packaged.verified_model_path, packaged.MODEL_SHA256, "Q4_1", "Apache-2.0"),
}


class BaseModelError(ValueError):
    """A base model that cannot be had offline; the message says what to do."""


def resolve(name: str | None, cache_dir: Path) -> ResolvedBase:
    """The base model `name` (default: the packaged SmolLM2) as a loadable HF folder."""
    name = name or DEFAULT_BASE
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise BaseModelError(f"{folder} is not a Hugging Face model folder (no config.json)")
        return ResolvedBase(name, folder.resolve(), "local folder", None, None, _license(folder))
    if name.lower() in PACKAGED:
        return _converted(name.lower(), PACKAGED[name.lower()], Path(cache_dir))
    return _from_hf_cache(name)


def _from_hf_cache(name: str) -> ResolvedBase:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(name, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        choices = ", ".join(PACKAGED)
        raise BaseModelError(
            f"base model {name!r} is not a local folder, not in the local Hugging Face cache, and not a packaged "
            f"model ({choices}); docpipe never downloads: fetch it yourself (huggingface-cli download {name}) or give a folder"
        ) from None
    return ResolvedBase(name, path, "hugging face cache", None, None, _license(path))


def _converted(name: str, spec: _Packaged, cache_dir: Path) -> ResolvedBase:
    """The packaged GGUF as an HF folder, converted on first use and reused after."""
    target = cache_dir / "base_models" / f"{name}-{spec.sha256[:12]}"
    if not (target / _PROVENANCE).is_file():
        gguf = spec.gguf()
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            _convert(gguf, work)
            (work / _PROVENANCE).write_text(json.dumps({"gguf": gguf.name, "sha256": spec.sha256, "quantisation": spec.quantisation,
                                                        "license": spec.license}, indent=2) + "\n")
            shutil.rmtree(target, ignore_errors=True)
            work.rename(target)  # whole or absent: an interrupted conversion leaves only a temp folder
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return ResolvedBase(name, target, "packaged gguf", spec.sha256, spec.quantisation, spec.license)


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; the weights
    # are plain float32 by now, so the marks are cleared (measured: ../shared/notes).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _license(folder: Path) -> str | None:
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()[0].strip() or None
    return None


def chat_template(folder: Path) -> str:
    """The base's own chat template: training, evaluation, chat and the Modelfile all render with it."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    template = json.loads(config.read_text(encoding="utf-8")).get("chat_template") if config.is_file() else None
    if isinstance(template, list):  # several named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if not template:
        raise BaseModelError(f"base model at {folder} has no chat template; use an instruct/chat model, "
                             "or add a chat_template.jinja to its folder")
    return template
