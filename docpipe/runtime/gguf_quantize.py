"""K-quants and Q8_0 through llama.cpp's own quantizer (export's files, and the eval's Q8_0), as the installed llama-cpp-python exposes
it: no llama.cpp build or download. gguf-py can only write the simple types in pure Python."""

from __future__ import annotations

import ctypes
from pathlib import Path

from docpipe.runtime.gguf_vocab import GGUFError

# docpipe's names -> llama.cpp's file types (llama_ftype)
QUANTS = {
    "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "q6_k": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
}


def quantize(source: Path, dest: Path, quant: str, threads: int) -> None:
    """Write `source` (an F16/F32 GGUF) quantised to `quant` at `dest`. Tensors whose width does not
    divide into K-quant blocks get llama.cpp's fallback types, as its quantize tool does."""
    try:
        import llama_cpp
        from llama_cpp._utils import suppress_stdout_stderr
    except ImportError:
        raise GGUFError("quantising needs llama-cpp-python: pip install 'docpipe[local]'") from None
    if quant not in QUANTS:
        raise GGUFError(f"unknown quantisation {quant!r}; use f16, bf16, f32 or one of {', '.join(QUANTS)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANTS[quant])
    params.nthread = threads
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor to stderr
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(dest).encode(), ctypes.byref(params))
    if status != 0:
        raise GGUFError(f"llama.cpp could not quantise {source.name} to {quant} (status {status})")
