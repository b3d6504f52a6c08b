"""No network at run time: the switches that keep third-party libraries from reaching out, in one place.

Each must be set before the library reads it (most read it when imported), so every module that
imports one of them calls `apply()` first; the values only ever turn things off.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    # Hugging Face libraries: local files only, and no usage telemetry (a background thread that
    # posts to the Hub); unstructured's hub lookups retried for ~23 s per file without it.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    # unstructured pings an analytics server on import and prints a usage notice.
    "SCARF_NO_ANALYTICS": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    # Unsloth's from_pretrained fetches a statistics repo from the Hub.
    "UNSLOTH_DISABLE_STATISTICS": "1",
    # litellm fetches a price list over the network on import unless told to use its local copy.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # docpipe draws its own progress; transformers' GGUF conversion draws a plain tqdm bar that its own
    # switch does not reach (tqdm reads this when it is imported).
    "TQDM_DISABLE": "1",
}


def apply() -> None:
    """Set every switch the user has not set: a user's own value always wins."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
