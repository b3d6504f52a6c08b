"""The stage interface: every stage is a module with

    run(inputs, cfg, *, events) -> Report     do the work (resuming what an interrupted run left)
    fingerprint(inputs, cfg) -> str            what decides the output, cheaply (no parsing, no training)
    is_current(inputs, cfg) -> bool            the output for these inputs and settings exists already

`inputs` are the typed artifacts below, `cfg` is the stage's own config section, `events` receives
`StageEvent`s and the report is the stage's pydantic result, written next to its artifacts. Only the
CLI and the loop compose stages; a stage never imports another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from docpipe.config import LLMConfig
from docpipe.events import EventSink
from docpipe.layout import Layout
from docpipe.store import write_json

if TYPE_CHECKING:
    from docpipe.runtime.hardware import Hardware

STAGES = ("ingest", "generate", "train", "evaluate", "export")


@dataclass(frozen=True)
class IngestInputs:
    source: Path  # the folder of documents
    layout: Layout


@dataclass(frozen=True)
class GenerateInputs:
    layout: Layout  # reads documents.jsonl
    llm: LLMConfig  # the gateway's settings: which model writes the pairs
    # "from-config" opens `llm`; None = the extractive generator alone; or an open client (tests hand in a fake)
    client: Any = "from-config"


@dataclass(frozen=True)
class TrainInputs:
    layout: Layout  # reads dataset/
    hardware: Hardware | None = None  # None: probe this machine


@dataclass(frozen=True)
class EvalInputs:
    layout: Layout  # reads runs/<id>/ (eval.run, else the latest finished run), dataset/, documents.jsonl, export/
    questions: Path | None = None  # the user's own questions (JSONL or CSV: question, answer, optional document)
    gguf: Path | None = None  # evaluate this GGUF (as "gguf") besides the trained model
    judge: LLMConfig | None = None  # an LLM judge through the gateway (a 1-5 rubric); None = no judge


@dataclass(frozen=True)
class ExportInputs:
    layout: Layout  # reads runs/<id>/ (export.run, else the latest finished run) and dataset/


In = TypeVar("In", contravariant=True)
C = TypeVar("C", contravariant=True)
R = TypeVar("R", bound=BaseModel, covariant=True)


class Stage(Protocol[In, C, R]):
    """What the CLI and the loop call; each stage module satisfies it."""

    def run(self, inputs: In, cfg: C, *, events: EventSink = ...) -> R: ...

    def fingerprint(self, inputs: In, cfg: C) -> str: ...

    def is_current(self, inputs: In, cfg: C) -> bool: ...


def record_fingerprint(layout: Layout, stage: str, fingerprint: str) -> None:
    """Note that `stage` finished with this fingerprint (after its report is written)."""
    write_json(layout.stage_stamp(stage), {"stage": stage, "fingerprint": fingerprint})


def matches_fingerprint(layout: Layout, stage: str, fingerprint: str, *outputs: Path) -> bool:
    """Whether `stage` last finished with `fingerprint` and its outputs are all still there."""
    try:
        stamp = json.loads(layout.stage_stamp(stage).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("fingerprint") == fingerprint and all(p.exists() for p in outputs)
