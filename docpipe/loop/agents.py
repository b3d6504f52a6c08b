"""The loop's two agents, both `BaseAgent`s on the same ladder and gateway as every other agent.

- `ProposerAgent`: from the best result so far, the config and the journal, ONE next move. With a
  model configured, the model proposes from the rendered ACTION_SPACE and the registry validates;
  offline, its heuristic takes the task's own ranked suggestions (cheap moves first, ranked by
  what the last result says) and returns the first that has not been tried.
- `ErrorRecoveryAgent`: from an `ErrorContext`, a fix: the first move of the first known failure
  signature that matches (out of memory -> a smaller batch, ...) and has not been tried; a model
  may propose another fix, still from the registry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from docpipe.agents.base import BaseAgent
from docpipe.loop.actions import ActionSpace, Move


@dataclass(frozen=True)
class ProposalContext:
    actions: ActionSpace
    current: dict[str, Any]  # action name -> its value in the best config
    headline: str  # the best result, in words
    signals: list[str]  # what the result says (e.g. the verdict and its reasons)
    tried: list[str]  # moves tried from this config or refused, as "action = value"
    suggestions: list[Move]  # the task's ranked moves for this result


class ProposerAgent(BaseAgent[ProposalContext, Move]):
    response_model = Move
    system_prompt = (
        "You improve a fine-tuned model by changing ONE setting at a time. You are given the last result, the current "
        "settings, the moves already tried, and the only actions allowed with their values. Propose the single move most "
        "likely to fix what the result says is wrong, never one already tried. "
        'Reply with JSON only: {"action": "...", "value": ..., "why": "..."}'
    )

    def build_prompt(self, ctx: ProposalContext) -> str:
        current = ", ".join(f"{k} = {v}" for k, v in ctx.current.items())
        tried = "; ".join(ctx.tried) or "none"
        return (
            f"Result: {ctx.headline}\nWhat it says: {'; '.join(ctx.signals) or 'nothing'}\nCurrent settings: {current}\n"
            f"Already tried: {tried}\n\n{ctx.actions.render()}"
        )

    def heuristic(self, ctx: ProposalContext) -> Move:
        for move in ctx.suggestions:
            if f"{move.action} = {move.value}" not in ctx.tried and ctx.current.get(move.action) != move.value:
                return move
        raise ValueError("every suggested move has been tried")


class ErrorContext(BaseModel):
    """What a failure looked like, for matching and for a model to read."""

    model_config = ConfigDict(extra="forbid")

    message: str
    kind: str = Field(description="The error family's kind (docpipe.errors.ErrorKind) or the exception's type.")
    traceback: str = Field(default="", description="The last lines of the traceback.")
    stage: str | None = None
    config: dict[str, Any] = {}
    data_shape: dict[str, Any] = {}
    profile: dict[str, Any] = {}
    previous_errors: list[str] = []


@dataclass(frozen=True)
class FailureSignature:
    name: str
    pattern: str  # regex, case-insensitive, searched in "kind: message\ntraceback"
    fixes: tuple[Move, ...]  # tried in order; a fix already tried is skipped
    description: str = ""

    def matches(self, ctx: ErrorContext) -> bool:
        return re.search(self.pattern, f"{ctx.kind}: {ctx.message}\n{ctx.traceback}", re.IGNORECASE) is not None


class Fix(BaseModel):
    model_config = ConfigDict(extra="ignore")

    signature: str = Field(default="", description="The known failure this is, or 'unknown'.")
    move: Move | None = Field(default=None, description="The registry move that should fix it; null when none applies.")
    why: str = Field(default="", max_length=400)


@dataclass(frozen=True)
class RecoveryTask:
    error: ErrorContext
    actions: ActionSpace
    signatures: tuple[FailureSignature, ...]
    tried: list[str] = field(default_factory=list)  # fixes already applied in this step, as "action = value"


class ErrorRecoveryAgent(BaseAgent[RecoveryTask, Fix]):
    response_model = Fix
    system_prompt = (
        "A step of a model-training pipeline failed. Given the error and the only actions allowed, propose the one "
        "setting change most likely to make the step succeed, or no move when none can. "
        'Reply with JSON only: {"signature": "...", "move": {"action": "...", "value": ..., "why": "..."} or null, "why": "..."}'
    )

    def build_prompt(self, task: RecoveryTask) -> str:
        e = task.error
        return (
            f"Error ({e.kind}{', stage ' + e.stage if e.stage else ''}): {e.message}\nTraceback (last lines):\n{e.traceback}\n"
            f"Data: {e.data_shape}\nEarlier errors: {'; '.join(e.previous_errors) or 'none'}\n"
            f"Fixes already tried: {'; '.join(task.tried) or 'none'}\n\n{task.actions.render()}"
        )

    def heuristic(self, task: RecoveryTask) -> Fix:
        for signature in task.signatures:
            if not signature.matches(task.error):
                continue
            for move in signature.fixes:
                if f"{move.action} = {move.value}" not in task.tried:
                    return Fix(signature=signature.name, move=move, why=move.why or signature.description)
            return Fix(signature=signature.name, move=None, why=f"every fix for {signature.name} has been tried")
        return Fix(signature="unknown", move=None, why="no known failure matches")
