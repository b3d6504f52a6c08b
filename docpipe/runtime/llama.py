"""llama.cpp (through llama-cpp-python) as every part of docpipe runs it: its log output and its threads.

Used by the local LLM provider, `docpipe chat` and the export's parity check.
"""

from __future__ import annotations

import ctypes
import os
import sys

try:
    import llama_cpp
except ImportError as exc:
    raise ImportError("running a GGUF model needs llama-cpp-python: pip install 'docpipe[local]'") from exc


@llama_cpp.llama_log_callback
def _log_errors_only(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    global _last_level
    _last_level = _last_level if level == _GGML_CONT else level
    if _last_level == _GGML_ERROR:
        sys.stderr.write(text.decode("utf-8", errors="replace"))


_GGML_ERROR, _GGML_CONT = 4, 5  # ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT
_last_level = 0


def quiet_llama_logs() -> None:
    """Let only llama.cpp's errors through to stderr.

    llama-cpp-python 0.3.36 maps ggml's log levels by an older numbering, so with verbose=False it
    still printed warnings (a Gemma model: "using full-size SWA cache" at every load, a note on
    every prompt that starts with BOS) into docpipe's output, and would hide real errors.
    """
    llama_cpp.llama_log_set(_log_errors_only, ctypes.c_void_p(0))


def default_threads() -> int:
    """Threads for a local model: all cores but one, at most 4; so 1 on a 2-core machine.

    llama.cpp's threads spin while they wait for each other, so a thread without a core of its
    own stalls them all: SmolLM2-135M on an idle 2-core machine made 45 tokens/s with 2 threads
    and 28 with 1, but 3.5 with 2 once another process took a core. Set llm.threads on a
    machine that does nothing else. Beyond 4, a small model gains little.
    """
    return max(1, min(4, (os.cpu_count() or 1) - 1))
