"""`docpipe build DIR`: documents in, a cited, evaluated, Ollama-ready model out, with a journal.

Ingest, profile the corpus (the `ProfilerAgent` picks the baseline's settings), then the generic loop
(`docpipe.loop`) on the document task: baseline, then one move per step, kept only when it wins a
paired test, until the target is met, progress stops or the budget is spent; then the best run is
exported with its parity gate. Everything is resumable: stages skip what their fingerprints say is
done, the loop continues from its journal, and a killed export's partial files are removed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from docpipe.build.profile import CorpusProfile, ProfilerAgent, ProfileTask, StartSettings, profile_corpus
from docpipe.build.task import DocsTask, Progress, Target, no_progress
from docpipe.config import DocpipeConfig, updated
from docpipe.contracts import Document, ExportResult
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.layout import Layout
from docpipe.loop.agents import ErrorRecoveryAgent, ProposerAgent
from docpipe.loop.journal import Journal
from docpipe.loop.orchestrator import Loop, LoopResult, LoopSettings
from docpipe.runtime import hardware, pretrained
from docpipe.stage import ExportInputs, IngestInputs
from docpipe.store import atomic_write_text, read_records, remove_partials

EXPORT_RESERVE_MINUTES = 2.0  # kept from the loop's budget for the export and its parity check


class BuildError(DocpipeError):
    stage = "build"


class BuildSettings(BaseModel):
    budget_minutes: float = 30.0
    max_steps: int = 6
    plateau_steps: int = 3
    p_threshold: float = 0.1
    target: Target = Target()
    track: Literal["mlflow"] | None = None
    track_uri: str | None = None  # default: a file store in OUT/mlruns


@dataclass
class BuildResult:
    profile: CorpusProfile
    start: StartSettings
    loop: LoopResult
    export: ExportResult | None
    seconds: float


def run_build(source: Path, layout: Layout, cfg: DocpipeConfig, settings: BuildSettings, progress: Progress = no_progress) -> BuildResult:
    from docpipe.ingest import pipeline as ingest

    started = time.monotonic()
    if not Path(source).is_dir():
        raise BuildError(f"{source} is not a folder: give the folder of documents to learn", kind=ErrorKind.bad_input)
    remove_partials(layout.root)
    inputs = IngestInputs(Path(source), layout)
    if not ingest.is_current(inputs, cfg.ingest):
        with progress("ingest") as events:
            ingest.run(inputs, cfg.ingest, events=events)
    docs = read_records(layout.documents, Document)
    if not any(d.text.strip() for d in docs):
        found = f"none of the {len(docs)} files under {source} has" if docs else f"no file under {source} has"
        raise BuildError(f"{found} text docpipe can read (see {layout.ingest_report}): give a folder of documents")
    hw = hardware.probe()
    profile = profile_corpus(docs, hw, cfg.generate.chunk_tokens)
    reasoning = _reasoning_llm(cfg, layout)
    wanted = ProfileTask(
        profile, settings.budget_minutes, cfg.train.target_exposures, cfg.generate.phrasings_per_fact, tokens_per_s=_training_speed(cfg, hw)
    )
    start = ProfilerAgent(reasoning).run(wanted).value
    _write_changed(
        layout.root / "profile.json", json.dumps({"profile": profile.model_dump(), "start": start.model_dump()}, indent=2) + "\n"
    )
    baseline = updated(
        cfg,
        generate=updated(cfg.generate, chunk_tokens=start.chunk_tokens, phrasings_per_fact=start.phrasings_per_fact),
        train=updated(cfg.train, time_budget_minutes=start.time_budget_minutes),
        # Each step is judged on fewer questions than a full `docpipe eval` asks, so several steps fit a laptop's budget.
        eval=updated(
            cfg.eval, seen_questions=min(cfg.eval.seen_questions, 20), max_questions_per_set=min(cfg.eval.max_questions_per_set, 80)
        ),
    )
    task = DocsTask(Path(source), layout, baseline, settings.target, hw, _installed_bases(cfg), progress)
    tracker = _tracker(layout, settings)
    journal = Journal(layout.journal_jsonl, layout.journal_md, f"docpipe build {source}", tracker.log if tracker else None)
    loop_settings = LoopSettings(
        max_steps=settings.max_steps,
        budget_minutes=max(1.0, settings.budget_minutes - EXPORT_RESERVE_MINUTES),
        plateau_steps=settings.plateau_steps,
        p_threshold=settings.p_threshold,
        seed=cfg.train.seed,
    )
    result = Loop(task, journal, loop_settings, ProposerAgent(reasoning), ErrorRecoveryAgent(reasoning)).run()
    if tracker is not None:  # steps journaled before a restart are logged too
        for step in journal.steps:
            tracker.log(step)
        if result.best is not None:
            tracker.crown(result.best)
    exported = None
    if result.best is not None and result.best.run:
        _write_changed(layout.best, result.best.run + "\n")
        exported = _export(layout, DocpipeConfig.model_validate(result.best.config), result.best.run, progress)
    return BuildResult(profile, start, result, exported, time.monotonic() - started)


def _training_speed(cfg: DocpipeConfig, hw: hardware.Hardware) -> float:
    """The measured tokens/s of the backend training will get here (the one the trainer plans its epochs with)."""
    from trainers.backend import BackendUnavailable
    from trainers.dispatch import choose
    from trainers.exposures import TOKENS_PER_S

    try:
        choice = choose(cfg.train.backend, cfg.train.device, hw)
    except BackendUnavailable:  # the step's training says so, and the recovery agent falls back to hf
        return TOKENS_PER_S[("hf", "cpu")]
    return TOKENS_PER_S.get((choice.backend, choice.device), TOKENS_PER_S[("hf", "cpu")])


def _tracker(layout: Layout, settings: BuildSettings):
    if settings.track != "mlflow":
        return None
    from docpipe.build.tracking import MlflowTracker

    return MlflowTracker(layout, settings.track_uri)


def _write_changed(path: Path, text: str) -> None:
    """Written only when different: a build that changes nothing leaves every file as it was."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def _export(layout: Layout, cfg: DocpipeConfig, run_id: str, progress: Progress) -> ExportResult:
    from export import pipeline as export

    export_cfg = updated(cfg.export, run=run_id)
    inputs = ExportInputs(layout)
    if export.is_current(inputs, export_cfg):
        return ExportResult.model_validate_json(layout.export.result.read_text(encoding="utf-8"))
    with progress("export") as events:
        return export.run(inputs, export_cfg, events=events)


def _installed_bases(cfg: DocpipeConfig) -> tuple[str, ...]:
    """The base models a move may switch to: the configured one and the packaged ones installed here."""
    names = [cfg.train.base_model]
    for name in pretrained.PACKAGED:
        if name not in names and pretrained.installed(name):
            names.append(name)
    return tuple(names)


def _reasoning_llm(cfg: DocpipeConfig, layout: Layout):
    """An API model for the profiler, proposer and recovery agents; None (their heuristics) for none, auto or a GGUF:
    the packaged 135M model cannot reason about training runs."""
    model = cfg.llm.model
    if model in ("none", "auto") or model.endswith(".gguf") or "/" not in model:
        return None
    from docpipe.llm import open_llm

    return open_llm(cfg.llm, cache_dir=layout.llm_cache)
