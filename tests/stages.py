"""The four stages called through their one interface, `run(inputs, cfg, *, events)`, with the
arguments tests use most: an output folder, a config, and what the test hands in."""

from __future__ import annotations

from pathlib import Path

from docpipe.config import DocpipeConfig, IngestConfig
from docpipe.contracts import DatasetReport, ExportResult, IngestReport, TrainResult
from docpipe.events import EventSink, ignore
from docpipe.layout import Layout
from docpipe.runtime.hardware import Hardware
from docpipe.stage import ExportInputs, GenerateInputs, IngestInputs, TrainInputs


def ingest_folder(source: Path, out: Path, cfg: IngestConfig, events: EventSink = ignore) -> IngestReport:
    from docpipe.ingest import pipeline

    return pipeline.run(IngestInputs(Path(source), Layout(out)), cfg, events=events)


def generate_dataset(out: Path, cfg: DocpipeConfig, llm=None, events: EventSink = ignore) -> DatasetReport:
    """`llm` is the model that writes pairs (None: the extractive generator alone)."""
    from docpipe.qa import generate

    return generate.run(GenerateInputs(Layout(out), cfg.llm, client=llm), cfg.generate, events=events)


def train_run(out: Path, cfg: DocpipeConfig, hardware: Hardware | None = None, events: EventSink = ignore) -> TrainResult:
    from trainers import train

    return train.run(TrainInputs(Layout(out), hardware), cfg.train, events=events)


def export_run(out: Path, cfg: DocpipeConfig, events: EventSink = ignore) -> ExportResult:
    from export import pipeline

    return pipeline.run(ExportInputs(Layout(out)), cfg.export, events=events)
