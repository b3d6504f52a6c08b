"""The stage interface, as the CLI and the coming loop use it: every stage is `run(inputs, cfg, *, events)`
with one event type, and says cheaply (`is_current`) whether its output for these inputs and settings exists."""

from __future__ import annotations

import inspect

import pytest

from docpipe.config import DocpipeConfig, ExportConfig, GenerateConfig, IngestConfig, TrainConfig, updated
from docpipe.events import StageEvent
from docpipe.ingest import pipeline as ingest
from docpipe.layout import Layout
from docpipe.qa import generate
from docpipe.runtime.hardware import Hardware
from docpipe.stage import ExportInputs, GenerateInputs, IngestInputs, TrainInputs
from export import pipeline as export
from tests.trainers.tiny_model import build_tiny_model
from trainers import train

STAGES = {"ingest": ingest, "generate": generate, "train": train, "export": export}
CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=1)


@pytest.mark.parametrize("name", STAGES)
def test_every_stage_has_the_one_interface(name):
    module = STAGES[name]
    assert module.STAGE == name
    run = inspect.signature(module.run)
    assert list(run.parameters)[:2] == ["inputs", "cfg"]
    assert run.parameters["events"].kind is inspect.Parameter.KEYWORD_ONLY
    for check in (module.fingerprint, module.is_current):
        assert list(inspect.signature(check).parameters) == ["inputs", "cfg"]


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    (folder / "pumps.md").write_text(
        "# Pumps\n\nPump A runs at 12 litres per minute. Pump B runs at 30 litres per minute.\n\n"
        "The filter of pump A is changed every 90 days.\n"
    )
    (folder / "history.txt").write_text("The plant opened in 1987. It was extended in 2004 with a second hall.\n")
    return folder


def test_the_stages_chained_through_the_interface_report_events_and_know_when_they_are_current(docs, tmp_path):
    layout, events = Layout(tmp_path / "out"), []
    cfg = DocpipeConfig(
        ingest=IngestConfig(workers=1),
        generate=GenerateConfig(paraphrase_probes=2, abstention_probes=2),
        train=TrainConfig(base_model=str(build_tiny_model(tmp_path / "base")), batch_size=4, max_steps=2, threads=1),
        export=ExportConfig(quantizations=["f16"], modelfile_quantization="f16", threads=1, parity_chats=2),
    )
    steps = [
        (ingest, IngestInputs(docs, layout), cfg.ingest, lambda c: updated(c, min_chars=20)),
        (generate, GenerateInputs(layout, cfg.llm, client=None), cfg.generate, lambda c: updated(c, seed=1)),
        (train, TrainInputs(layout, CPU), cfg.train, lambda c: updated(c, lora_rank=8)),
        (export, ExportInputs(layout), cfg.export, lambda c: updated(c, quantizations=["f16", "q8_0"])),
    ]
    for stage, inputs, settings, change in steps:
        assert not stage.is_current(inputs, settings), stage.STAGE
        report = stage.run(inputs, settings, events=events.append)
        assert stage.is_current(inputs, settings), stage.STAGE
        assert not stage.is_current(inputs, change(settings)), f"{stage.STAGE}: another setting is another output"
        assert type(report).model_validate_json(report.model_dump_json()) == report  # the report is a pydantic record
        seen = [e for e in events if e.stage == stage.STAGE]
        assert seen and all(isinstance(e, StageEvent) for e in seen), stage.STAGE
    assert [e.step for e in events if e.stage == "ingest"][-1] == 2  # both files
    assert {e.phase for e in events if e.stage == "train"} == {"sft"} and any("loss" in e.metrics for e in events)

    # A changed document makes ingestion, and only ingestion, stale until it runs again.
    (docs / "history.txt").write_text("The plant opened in 1987. It closed in 2031.\n")
    assert not ingest.is_current(IngestInputs(docs, layout), cfg.ingest)
    assert generate.is_current(GenerateInputs(layout, cfg.llm, client=None), cfg.generate)
    ingest.run(IngestInputs(docs, layout), cfg.ingest)
    assert not generate.is_current(GenerateInputs(layout, cfg.llm, client=None), cfg.generate)


def test_fingerprints_are_cheap_and_stable(docs, tmp_path):
    inputs = IngestInputs(docs, Layout(tmp_path / "out"))
    assert ingest.fingerprint(inputs, IngestConfig()) == ingest.fingerprint(inputs, IngestConfig())
    assert ingest.fingerprint(inputs, IngestConfig()) != ingest.fingerprint(inputs, IngestConfig(ocr=False))
    assert not (tmp_path / "out").exists()  # nothing parsed, nothing written
