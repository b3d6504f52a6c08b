"""The trained model, in float32 on the CPU: the base with its LoRA adapter, first as trained
(unmerged: the parity gate's and the evaluation's reference) and then merged into plain weights for
the GGUF writer. Export and evaluation both load it this way."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from docpipe.runtime import offline

# peft calls transformers' deprecated is_gradient_checkpointing when it wraps a model; harmless until transformers 6,
# and not the user's to act on (it was printed under `docpipe export` and `docpipe eval`).
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def load_trained(base: Path, adapter: Path | None) -> tuple[Any, Any]:
    """(the model, tokenizer), ready for inference: a peft model with the adapter applied, or the plain base when `adapter` is None."""
    offline.apply()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(base)
    # float32 whatever the base's dtype: the merge adds a small delta, which bf16 would round away.
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is None:
        return model.eval(), tokenizer
    from peft import PeftModel

    return PeftModel.from_pretrained(model, adapter).eval(), tokenizer


def merged_state(model: Any) -> dict[str, Any]:
    """W + (alpha / r) B A folded into each adapted weight; the adapter is gone from `model` after this.
    A plain model (no adapter) gives its own weights."""
    merge = getattr(model, "merge_and_unload", None)
    return (merge() if merge else model).state_dict()
