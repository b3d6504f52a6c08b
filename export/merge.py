"""The trained model, in float32 on the CPU: the base with its LoRA adapter, first as trained
(unmerged: the parity gate's reference) and then merged into plain weights for the GGUF writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_trained(base: Path, adapter: Path) -> tuple[Any, Any]:
    """(peft model with the adapter applied, tokenizer), ready for inference."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(base)
    # float32 whatever the base's dtype: the merge adds a small delta, which bf16 would round away.
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return PeftModel.from_pretrained(model, adapter).eval(), tokenizer


def merged_state(model: Any) -> dict[str, Any]:
    """W + (alpha / r) B A folded into each adapted weight; the adapter is gone from `model` after this."""
    return model.merge_and_unload().state_dict()
