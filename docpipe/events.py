"""The one event type every stage reports progress with: the CLI renders it with rich, and the
loop writes it to its journal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class StageEvent(BaseModel):
    """Progress of a stage: `step` of `total` done (either may be unknown), a message, figures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Annotated[str, Field(description="ingest | generate | train | evaluate | export.")]
    phase: Annotated[str, Field(description="A part of the stage with its own count (train: sft, dpo); empty when there is one.")] = ""
    step: Annotated[int | None, Field(description="Units done so far: files, chunks, optimiser steps.")] = None
    total: Annotated[int | None, Field(description="Units in all, when known.")] = None
    message: Annotated[str, Field(description="What is happening now, in a few words.")] = ""
    metrics: Annotated[dict[str, float], Field(description="Figures so far: loss, tokens/s, bytes done, ...")] = {}


EventSink = Callable[[StageEvent], None]


def ignore(event: StageEvent) -> None:
    """The sink of a caller that does not watch progress."""
