"""The document task's ACTION_SPACE, its heuristic proposer's ranking, and its known failures.

Allowed values come from the config fields' bounds (`allowed_values`), the base model from the
bases installed here. The ranking reads the eval verdict, cheap moves first (FLAML's CFO): a
training-only move reuses the dataset, a data move regenerates it (seconds with the extractive
generator, replies cached with a model).
"""

from __future__ import annotations

from docpipe.config import DocpipeConfig, GenerateConfig, LLMConfig, TrainConfig
from docpipe.loop.actions import ActionDefinition, ActionSpace, Move, allowed_values
from docpipe.loop.agents import FailureSignature


def action_space(base_models: tuple[str, ...]) -> ActionSpace:
    def action(name: str, category: str, section: type, field: str, description: str, ladder: tuple = ()) -> ActionDefinition:
        values = allowed_values(section, field, ladder)
        return ActionDefinition(name=name, description=description, category=category, field=f"{_SECTIONS[section]}.{field}", values=values)

    return ActionSpace(
        [
            action(
                "phrasings_per_fact",
                "data",
                GenerateConfig,
                "phrasings_per_fact",
                "Question wordings trained per fact.",
                (1, 2, 3, 4, 5, 6),
            ),
            action("rehearsal", "data", GenerateConfig, "rehearsal", "Also train on each chunk's own text."),
            action(
                "refusal_share",
                "data",
                GenerateConfig,
                "refusal_share",
                "Share of out-of-corpus questions trained to be declined.",
                (0.0, 0.05, 0.1, 0.2, 0.3),
            ),
            action(
                "pairs_per_fact", "data", GenerateConfig, "pairs_per_fact", "Questions asked per fact of a chunk.", (0.5, 1.0, 1.5, 2.0)
            ),
            action("chunk_tokens", "data", GenerateConfig, "chunk_tokens", "Most tokens in one chunk.", (192, 256, 384, 512, 768)),
            action(
                "min_support",
                "data",
                GenerateConfig,
                "min_support",
                "Share of an answer's words its quote must hold.",
                (0.4, 0.5, 0.6, 0.7),
            ),
            action(
                "generator", "data", LLMConfig, "model", "Who writes the Q&A pairs: 'none' = the extractive generator.", ("none", "auto")
            ),
            action(
                "learning_rate",
                "training",
                TrainConfig,
                "learning_rate",
                "Peak learning rate of the LoRA weights.",
                (1e-4, 2e-4, 5e-4, 1e-3, 2e-3),
            ),
            action(
                "target_exposures",
                "training",
                TrainConfig,
                "target_exposures",
                "Times each fact is seen in training (sets the epochs, within the time budget).",
                (4, 8, 12, 18, 24, 36),
            ),
            action("lora_rank", "training", TrainConfig, "lora_rank", "LoRA rank r.", (8, 16, 32, 64)),
            action("batch_size", "training", TrainConfig, "batch_size", "Examples per optimiser step.", (1, 2, 4, 8, 16)),
            action("max_seq_tokens", "training", TrainConfig, "max_seq_tokens", "Longest training sequence.", (256, 512, 1024, 2048)),
            action("dpo", "training", TrainConfig, "dpo", "Run DPO after SFT (grounded answers preferred to miscited ones)."),
            action("backend", "training", TrainConfig, "backend", "Training backend ('auto' = the best this machine has)."),
            ActionDefinition(
                name="base_model", description="The model fine-tuned.", category="model", field="train.base_model", values=base_models
            ),
        ]
    )


_SECTIONS = {GenerateConfig: "generate", LLMConfig: "llm", TrainConfig: "train"}


def suggestions(signals: list[str], cfg: DocpipeConfig) -> list[Move]:
    """Moves worth trying for what the last eval said, most promising (and cheapest) first."""
    t, g = cfg.train, cfg.generate
    more_exposures = Move(
        action="target_exposures", value=_next(t.target_exposures, (4, 8, 12, 18, 24, 36)), why="more passes over each fact"
    )
    faster = Move(action="learning_rate", value=_next(t.learning_rate, (1e-4, 2e-4, 5e-4, 1e-3, 2e-3)), why="learn faster")
    more_wordings = Move(action="phrasings_per_fact", value=_next(g.phrasings_per_fact, (1, 2, 3, 4, 5, 6)), why="more wordings per fact")
    rehearse = Move(action="rehearsal", value=True, why="train on the documents' own text")
    refuse_more = Move(action="refusal_share", value=_next(g.refusal_share, (0.0, 0.05, 0.1, 0.2, 0.3)), why="teach abstention")
    refuse_less = Move(action="refusal_share", value=_previous(g.refusal_share, (0.0, 0.05, 0.1, 0.2, 0.3)), why="less refusal data")
    verdict = signals[0] if signals else ""
    by_verdict = {
        "undertrained": [faster, more_exposures, more_wordings, rehearse],
        "overfit": [more_wordings, rehearse, Move(action="target_exposures", value=_previous(t.target_exposures, (4, 8, 12, 18, 24, 36)))],
        "ungrounded": [refuse_more, rehearse, more_exposures, faster],
        "over-refusing": [refuse_less, more_exposures],
        "insufficient-data": [Move(action="pairs_per_fact", value=_next(g.pairs_per_fact, (0.5, 1.0, 1.5, 2.0)), why="ask more questions")],
    }
    # An ok verdict short of the target: what the knowledge benchmark says moves each measure (README, Knowledge).
    by_shortfall = {
        "right_document": [more_wordings, more_exposures, rehearse],
        "abstention": [refuse_more],
        "new_words_f1": [faster, more_exposures, more_wordings],
    }
    short = [s.split()[1] for s in signals if s.startswith("short: ")]
    ranked = (
        by_verdict.get(verdict, []) + [m for name in short for m in by_shortfall.get(name, [])] + [faster, more_exposures, more_wordings]
    )
    time_limited = any(s.startswith("time-limited: ") for s in signals)  # the epochs were cut to the time budget
    unique: dict[tuple[str, str], Move] = {}
    for move in ranked:
        if move.value is not None and not (time_limited and move is more_exposures):
            unique.setdefault((move.action, repr(move.value)), move)
    return list(unique.values())


def _next(value, ladder: tuple):
    above = [v for v in ladder if v > value]
    return above[0] if above else None


def _previous(value, ladder: tuple):
    below = [v for v in ladder if v < value]
    return below[-1] if below else None


# Known failures, each mapped to registry moves tried in order (the error-recovery agent's library).
SIGNATURES = (
    FailureSignature(
        "out of memory",
        r"out of memory|MemoryError|can't allocate memory",  # CUDA's and torch's CPU allocator's words
        (
            Move(action="batch_size", value=2, why="smaller batches need less memory"),
            Move(action="max_seq_tokens", value=512, why="shorter sequences need less memory"),
            Move(action="batch_size", value=1),
        ),
    ),
    FailureSignature(
        "nan loss", r"nan loss|loss is nan|\bnan\b", (Move(action="learning_rate", value=1e-4, why="a lower rate keeps the loss finite"),)
    ),
    FailureSignature(
        "empty dataset",
        r"empty dataset|has no pairs|nothing left to train",
        (Move(action="min_support", value=0.4, why="accept answers with looser quotes"), Move(action="chunk_tokens", value=768)),
    ),
    FailureSignature("no pad token", r"pad.?token", (Move(action="backend", value="hf", why="the hf backend sets a pad token"),)),
    FailureSignature(
        "backend unavailable",
        r"backend unavailable|needs unsloth|needs mlx|cannot start here|no CUDA",
        (Move(action="backend", value="hf", why="transformers + peft run everywhere"),),
    ),
    FailureSignature(
        "context too long",
        r"context too long|too long for|exceeds the context|maximum context",
        (Move(action="chunk_tokens", value=256, why="shorter chunks fit the context"), Move(action="max_seq_tokens", value=2048)),
    ),
    FailureSignature(
        "provider down",
        r"provider down|rate limit|authentication|api key|connection",
        (Move(action="generator", value="none", why="the extractive generator needs no provider"),),
    ),
    FailureSignature("disk full", r"disk full|no space left", ()),
)
