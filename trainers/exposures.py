"""How many passes over the data: enough that each fact is seen `target_exposures` times (all its
wordings counted), within the time budget at the backend's measured speed; and how often each fact
was then seen, for the run's record.

A fact is learnt by a small model only after several differently worded exposures; passes beyond
that cost time and overfit. The speed is a measured figure per backend and device, not this
machine's live one, so that the same dataset and settings always plan the same epochs (the epochs
are part of the run id, and a second run must find the first).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from docpipe.config import TrainConfig
from docpipe.contracts import Exposures
from trainers.data import TrainData

# Real (non-padding) tokens per second of LoRA SFT on the packaged SmolLM2-135M, batch 8:
# hf/cpu from scripts/bench_train.py on 2 cores (bench-results/train.json). The others are
# conservative guesses until measured; a faster machine finishes early, never late.
TOKENS_PER_S = {("hf", "cpu"): 188.0, ("hf", "cuda"): 3000.0, ("unsloth", "cuda"): 3000.0, ("hf", "mps"): 400.0, ("mlx", "metal"): 1000.0}
CHARS_PER_TOKEN = 4.0  # English text through a BPE tokenizer: what the plan counts tokens with, before any tokenizer is loaded
MAX_EPOCHS = 20
MIN_EPOCHS = 1.0  # below one pass some facts are never seen: over budget rather than not knowing a document


@dataclass(frozen=True)
class EpochPlan:
    epochs: float
    reason: str
    tokens_per_epoch: int


def auto_epochs(pairs: int) -> int:
    """Passes for a dataset without fact ids (made before phrasings): 2 for thousands of pairs, up to 5 for a few hundred."""
    return min(5, max(2, round(2000 / max(pairs, 1))))


def plan_epochs(data: TrainData, cfg: TrainConfig, backend: str, device: str) -> EpochPlan:
    """The epochs to train for, and why."""
    tokens = round(data.chars / CHARS_PER_TOKEN)
    if cfg.epochs:
        return EpochPlan(cfg.epochs, "given", tokens)
    if not data.wordings:
        return EpochPlan(float(auto_epochs(len(data.train))), "from the dataset size (train.jsonl has no fact ids)", tokens)
    wordings = statistics.fmean(data.wordings.values())
    wanted = min(MAX_EPOCHS, math.ceil(cfg.target_exposures / wordings))
    reason = f"{cfg.target_exposures} exposures per fact / {wordings:.1f} wordings per fact"
    if cfg.time_budget_minutes:
        speed = TOKENS_PER_S.get((backend, device), TOKENS_PER_S[("hf", "cpu")])
        affordable = cfg.time_budget_minutes * 60 * speed / max(tokens, 1)
        if affordable < wanted:
            return EpochPlan(
                max(MIN_EPOCHS, math.floor(affordable * 10 + 1e-9) / 10),
                f"time budget: {cfg.time_budget_minutes:g} min at ~{speed:g} tokens/s ({backend} on {device}) affords "
                f"{affordable:.1f} of the {wanted} epochs that {reason} asks",
                tokens,
            )
    return EpochPlan(float(wanted), reason, tokens)


def exposures(data: TrainData, plan: EpochPlan, epochs_done: float) -> tuple[Exposures | None, dict[str, float]]:
    """The run's exposure summary and the count per fact (wordings x epochs done); None without fact ids."""
    if not data.wordings:
        return None, {}
    per_fact = {fact: round(n * epochs_done, 2) for fact, n in sorted(data.wordings.items())}
    counts = list(per_fact.values())
    summary = Exposures(
        epochs=round(epochs_done, 2),
        epochs_reason=plan.reason,
        facts=len(per_fact),
        wordings_per_fact=round(statistics.fmean(data.wordings.values()), 2),
        min=min(counts),
        median=statistics.median(counts),
        max=max(counts),
        rehearsals=data.kinds.get("rehearsal", 0),
        refusals=data.kinds.get("refusal", 0),
        estimated_tokens_per_epoch=plan.tokens_per_epoch,
    )
    return summary, per_fact
