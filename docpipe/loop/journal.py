"""The loop's journal: one record per step (what was tried, from where, why, what it measured, and
whether it was kept), as JSONL for programs and as Markdown for people. It is also the loop's
snapshot: written after every step, it is all a restarted loop needs to continue where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docpipe.loop.actions import Move
from docpipe.loop.keep import Decision
from docpipe.store import atomic_write_text, read_records

Outcome = Literal["baseline", "kept", "reverted", "failed", "refused"]


class StepRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    parent: int | None = Field(description="The step whose config this one changed (the best so far).")
    move: Move | None = None
    proposer: str = Field(default="", description="Who proposed the move: heuristic, a model (its tier), a recovery.")
    config_fingerprint: str = ""
    config: dict[str, Any] = Field(default={}, description="The step's whole config: a restarted loop rebuilds the best from it.")
    outcome: Outcome
    run: str | None = Field(default=None, description="The task's name for what this step made (a run id).")
    measures: dict[str, Any] = {}
    scores: dict[str, float] = Field(default={}, description="Per-example scores the paired test compares.")
    headline: str = ""
    decision: Decision | None = None
    error: str | None = None
    recovery: str | None = Field(default=None, description="How a failure was handled.")
    seconds: float = 0.0
    cost_usd: float = 0.0


def best_step(steps: list[StepRecord]) -> StepRecord | None:
    """The step to beat: the last that stands (the baseline, or a move kept after it)."""
    standing = [r for r in steps if r.outcome in ("baseline", "kept")]
    return standing[-1] if standing else None


class Journal:
    def __init__(self, jsonl: Path, markdown: Path, title: str, on_append: Callable[[StepRecord], None] | None = None):
        """`on_append` sees each step once it is written (a tracker mirroring the journal elsewhere)."""
        self.jsonl, self.markdown, self.title, self.on_append = jsonl, markdown, title, on_append
        self.steps: list[StepRecord] = read_records(jsonl, StepRecord) if jsonl.is_file() else []

    def append(self, record: StepRecord) -> None:
        self.steps.append(record)
        atomic_write_text(self.jsonl, "".join(r.model_dump_json() + "\n" for r in self.steps))
        atomic_write_text(self.markdown, self.render())
        if self.on_append is not None:
            self.on_append(record)

    def render(self) -> str:
        lines = [
            f"# {self.title}",
            "",
            "| step | from | move | why | outcome | headline | test | time |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.steps:
            move = f"`{r.move.action} = {r.move.value}`" if r.move else "baseline"
            why = (r.move.why if r.move else "") + (f" ({r.proposer})" if r.proposer else "")
            test = r.decision.why if r.decision else (r.error or "")
            if r.recovery:
                test += f"; recovery: {r.recovery}"
            parent = "" if r.parent is None else str(r.parent)
            lines.append(f"| {r.step} | {parent} | {move} | {why} | {r.outcome} | {r.headline} | {test} | {r.seconds:.0f} s |")
        return "\n".join(lines) + "\n"
