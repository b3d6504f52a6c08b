"""The document-to-model pipeline as one task of the generic loop: its config (the whole `DocpipeConfig`),
its moves, how one config is run (ingest -> generate -> train -> eval through the stage interface,
each stage skipped when its fingerprint says nothing changed) and judged (per-question scores of
`eval_questions.jsonl`), and its known failures."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from docpipe.build import moves
from docpipe.config import DocpipeConfig, updated
from docpipe.contracts import DatasetReport, Estimate, EvalRecord, EvalReport
from docpipe.events import EventSink, ignore
from docpipe.layout import Layout
from docpipe.loop.actions import Move
from docpipe.loop.orchestrator import Trial
from docpipe.runtime.hardware import Hardware
from docpipe.stage import EvalInputs, GenerateInputs, IngestInputs, TrainInputs
from docpipe.store import read_records, stable_hash

NEW_WORDS = ("rephrased", "unseen")  # questions in words never trained on: the headline
Progress = Callable[[str], AbstractContextManager[EventSink]]


@contextlib.contextmanager
def no_progress(stage: str):
    """A `Progress` that draws nothing: the default for callers without a screen (tests, benchmarks)."""
    yield ignore


class Target(BaseModel):
    """When the loop may stop: every measure given must be reached (by the tuned model's point estimate).

    The default asks for what the knowledge recipe aims at: an ok verdict, the right document cited for 9 answers
    in 10, and 8 out-of-corpus questions in 10 declined; a verdict of ok alone is reached by a model that answers a
    third of the questions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict_ok: bool = True
    new_words_f1: float | None = None  # token F1 on rephrased + unseen questions
    right_document: float | None = 0.9  # share of cited answers that cite the right document
    abstention: float | None = 0.8  # on out-of-corpus questions

    def shortfalls(self, report: EvalReport, figures: dict[str, Any]) -> list[str]:
        """What is not reached yet, as `short: <measure>` signals the proposer ranks its moves by."""
        short = [] if not self.verdict_ok or report.verdict == "ok" else [f"short: verdict ({report.verdict}, wanted ok)"]
        for name in ("new_words_f1", "right_document", "abstention"):
            wanted, got = getattr(self, name), figures.get(name)
            if wanted is not None and (got is None or got < wanted):
                short.append(f"short: {name} ({'n/a' if got is None else f'{got:.2f}'}, wanted {wanted:g})")
        return short

    def met(self, report: EvalReport, figures: dict[str, Any]) -> bool:
        return not self.shortfalls(report, figures)


def score(record: EvalRecord, label: str = "tuned") -> tuple[str, float] | None:
    """One question's utility for the keep test, under a key that survives a change of wording: token F1 on
    answerable questions (an abstention scores 0), 1 for declining an out-of-corpus question."""
    answer = record.answers.get(label)
    q = record.question
    if answer is None:
        return None
    if q.set == "out_of_corpus":
        return f"out_of_corpus:{q.question}", float(answer.abstained)
    if q.set in NEW_WORDS and q.source_id:
        return f"{q.set}:{q.source_id}", 0.0 if answer.abstained else answer.f1
    return None


class DocsTask:
    name = "documents"

    def __init__(
        self,
        source: Path,
        layout: Layout,
        baseline: DocpipeConfig,
        target: Target,
        hardware: Hardware,
        base_models: tuple[str, ...],
        progress: Progress = no_progress,
        llm_client: Any = "from-config",
    ):
        self.source, self.layout, self._baseline, self.target, self.hardware = source, layout, baseline, target, hardware
        self.progress, self.llm_client = progress, llm_client
        self.actions = moves.action_space(base_models)
        self.signatures = moves.SIGNATURES
        self.last_eval: EvalReport | None = None

    def baseline(self) -> DocpipeConfig:
        return self._baseline

    def fingerprint(self, config: BaseModel) -> str:
        cfg = config.model_dump(mode="json")
        cfg.get("train", {}).pop("threads", None)  # how fast, not what: the same config on another machine
        cfg.get("ingest", {}).pop("workers", None)
        return stable_hash(cfg)[:12]

    def run(self, config: BaseModel, step: int) -> Trial:
        from docpipe.ingest import pipeline as ingest
        from docpipe.qa import generate
        from evals import pipeline as evaluation
        from trainers import train

        cfg = DocpipeConfig.model_validate(config.model_dump())
        layout = self.layout
        ingest_inputs = IngestInputs(self.source, layout)
        if not ingest.is_current(ingest_inputs, cfg.ingest):
            with self.progress("ingest") as events:
                ingest.run(ingest_inputs, cfg.ingest, events=events)
        generate_inputs = GenerateInputs(layout, cfg.llm, client=self.llm_client)
        if not generate.is_current(generate_inputs, cfg.generate):
            with self.progress("generate") as events:
                generate.run(generate_inputs, cfg.generate, events=events)
        with self.progress("train") as events:
            trained = train.run(TrainInputs(layout, self.hardware), cfg.train, events=events)
        eval_cfg = updated(cfg.eval, run=trained.run_id)
        eval_inputs = EvalInputs(layout)
        if evaluation.is_current(eval_inputs, eval_cfg):
            report = EvalReport.model_validate_json(layout.run(trained.run_id).eval_report.read_text(encoding="utf-8"))
        else:
            with self.progress("evaluate") as events:
                report = evaluation.run(eval_inputs, eval_cfg, events=events)
        self.last_eval = report
        records = read_records(layout.run(trained.run_id).eval_questions, EvalRecord)
        scores = dict(s for r in records if (s := score(r)) is not None)
        figures = headline_figures(report)
        short = self.target.shortfalls(report, figures)
        # Told to the proposer: when the epochs were cut to the time budget, more exposures would change nothing.
        plan = trained.exposures.epochs_reason if trained.exposures else ""
        time_limited = [f"time-limited: {plan}"] if plan.startswith("time budget") else []
        measures = {
            "verdict": report.verdict,
            **figures,
            "dataset": dataset_figures(layout),
            "train_s": trained.wall_s,
            "eval_s": report.seconds,
        }
        return Trial(
            run=trained.run_id,
            scores=scores,
            measures=measures,
            headline=headline(report, figures),
            signals=[report.verdict, *report.reasons, *short, *time_limited],
            target_met=not short,
        )

    def suggestions(self, trial: Trial, config: BaseModel) -> list[Move]:
        return moves.suggestions(trial.signals, DocpipeConfig.model_validate(config.model_dump()))

    def describe_failure(self, config: BaseModel) -> dict[str, Any]:
        shape: dict[str, Any] = {"documents": self.layout.documents.is_file()}
        report = self.layout.dataset.report
        if report.is_file():
            import json

            data = json.loads(report.read_text(encoding="utf-8"))
            shape.update(splits=data.get("splits"), train_kinds=data.get("train_kinds"))
        return shape


def dataset_figures(layout: Layout) -> dict[str, Any]:
    """What the step trained on and was judged by: the summary shows the best step's, not the last generated."""
    report = DatasetReport.model_validate_json(layout.dataset.report.read_text(encoding="utf-8"))
    kinds, splits = report.train_kinds, report.splits
    return {
        "facts": report.facts,
        "wordings": kinds.get("qa", 0),
        "passages": kinds.get("rehearsal", 0),
        "refusals": kinds.get("refusal", 0),
        "rephrased": splits.get("probes_paraphrase", 0),
        "unseen": splits.get("eval", 0),
        "generate_s": report.seconds,
    }


def _value(estimate: Estimate | None) -> float | None:
    return None if estimate is None else estimate.value


def headline_figures(report: EvalReport) -> dict[str, Any]:
    """Tuned and base on questions in new words (F1 and correct), the tuned model's citations, abstention and over-refusal."""
    figures: dict[str, Any] = {}
    for label in ("tuned", "base"):
        sets = report.sets.get(label, {})
        new = [sets[name] for name in NEW_WORDS if name in sets]
        n = sum(s.f1.n for s in new)
        if n:
            figures[f"{label}_new_words_f1"] = round(sum((s.f1.value or 0) * s.f1.n for s in new) / n, 3)
            figures[f"{label}_new_words_correct"] = round(sum((s.correct.value or 0) * s.correct.n for s in new) / n, 3)
    figures["new_words_f1"] = figures.get("tuned_new_words_f1")
    tuned = report.sets.get("tuned", {})
    answerable = [tuned[name] for name in ("seen", *NEW_WORDS) if name in tuned]
    cited = sum(s.citation_right_document.n for s in answerable)
    figures["right_document"] = (
        round(sum((s.citation_right_document.value or 0) * s.citation_right_document.n for s in answerable) / cited, 3) if cited else None
    )
    figures["abstention"] = _value(tuned["out_of_corpus"].abstained) if "out_of_corpus" in tuned else None
    n = sum(s.abstained.n for s in answerable)
    figures["over_refusal"] = round(sum((s.abstained.value or 0) * s.abstained.n for s in answerable) / n, 3) if n else None
    gain = next((c for c in report.comparisons if c.a == "base" and c.b == "tuned" and c.set == "rephrased+unseen"), None)
    if gain is not None:
        d = gain.difference
        figures["gain_correct"] = {"value": d.value, "low": d.low, "high": d.high, "n": d.n, "p": gain.p_value}
    return figures


def headline(report: EvalReport, f: dict[str, Any]) -> str:
    def pct(v):
        return "n/a" if v is None else f"{100 * v:.0f}%"

    gain = f.get("gain_correct")
    interval = f" ({100 * gain['low']:+.0f} to {100 * gain['high']:+.0f})" if gain and gain["low"] is not None else ""
    return (
        f"{report.verdict}: new-words F1 {f.get('tuned_new_words_f1')} vs base {f.get('base_new_words_f1')}, "
        f"correct {pct(f.get('tuned_new_words_correct'))} vs {pct(f.get('base_new_words_correct'))}{interval}; "
        f"right document {pct(f.get('right_document'))}, abstains {pct(f.get('abstention'))}, over-refuses {pct(f.get('over_refusal'))}"
    )
