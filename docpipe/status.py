"""`docpipe status`: what an output folder holds, read from the files stages wrote."""

from __future__ import annotations

import json
from collections import Counter

from docpipe.build.moves import suggestions
from docpipe.config import DocpipeConfig
from docpipe.contracts import DatasetReport, EvalReport, ExportResult, IngestReport, TrainResult
from docpipe.layout import Layout
from docpipe.loop.journal import StepRecord, best_step
from docpipe.store import read_records


def summarize(out: Layout) -> str:
    lines = [f"output folder: {out.root.resolve()}"]
    report_path = out.ingest_report
    if not report_path.exists():
        return "\n".join(lines + ["ingest: not run yet"] + _dataset(out) + _runs(out) + _build(out) + _export(out))
    report = IngestReport.model_validate(json.loads(report_path.read_text(encoding="utf-8")))
    failed = len(report.failures)
    lines.append(
        f"ingest: {report.parsed} of {report.files} files read from {report.input_dir} "
        f"({len(report.formats)} formats, {failed} failed or skipped) in {report.seconds:.1f} s"
    )
    lines += [f"  {path}: {reason}" for path, reason in list(report.failures.items())[:20]]
    if failed > 20:
        lines.append(f"  ... and {failed - 20} more in ingest_report.json")
    return "\n".join(lines + _dataset(out) + _runs(out) + _build(out) + _export(out))


def _dataset(out: Layout) -> list[str]:
    path = out.dataset.report
    if not path.exists():
        return ["dataset: not made yet (docpipe generate)"]
    report = DatasetReport.model_validate(json.loads(path.read_text(encoding="utf-8")))
    return [
        f"dataset: {report.splits.get('train', 0)} train + {report.splits.get('eval', 0)} eval pairs from "
        f"{report.documents_covered} of {report.documents_with_text} documents with text, "
        f"{report.splits.get('rejected', 0)} rejected; card: {out.dataset.card}"
    ]


def _runs(out: Layout) -> list[str]:
    """One line per training run, newest first; a run without a result was interrupted (resumable)."""
    runs = out.started_runs()
    if not runs:
        return ["train: no runs yet (docpipe train)"]
    lines = []
    for run in runs:
        result_path = run.result
        if not result_path.exists():
            lines.append(f"train: run {run.id} not finished (running, or interrupted: the same `docpipe train` command resumes it)")
            continue
        r = TrainResult.model_validate_json(result_path.read_text(encoding="utf-8"))
        held = f", best held-out loss {r.sft.best_eval_loss:.3f}" if r.sft.best_eval_loss is not None else ""
        dpo = " + DPO" if r.dpo else ""
        lines.append(
            f"train: run {r.run_id}: {r.base_model} via {r.backend} on {r.device}, {r.sft.steps} SFT steps{dpo}{held}; adapter: {r.adapter}"
        )
        lines += _evaluation(run)
    return lines


def _evaluation(run) -> list[str]:
    """The run's latest verdict and its headline: tuned vs base on questions asked in new words."""
    if not run.eval_report.is_file():
        return [f"  eval: not evaluated yet (docpipe eval --run {run.id})"]
    report = EvalReport.model_validate_json(run.eval_report.read_text(encoding="utf-8"))
    headline = []
    for label in ("tuned", "base"):
        scores = report.sets.get(label, {}).get("rephrased")
        if scores and scores.correct.value is not None:
            e = scores.correct
            headline.append(f"{label} {e.value:.0%} ({e.low:.0%}-{e.high:.0%}, n={e.n})")
    said = f"; rephrased questions answered: {' vs '.join(headline)}" if headline else ""
    return [f"  eval: verdict {report.verdict}{said}; report: {run.eval_html}"]


def _build(out: Layout) -> list[str]:
    """What `docpipe build`'s loop has done: its best step, what was tried, and the move it would try next."""
    if not out.journal_jsonl.is_file():
        return []
    steps = read_records(out.journal_jsonl, StepRecord)
    best = best_step(steps)
    if best is None:
        return [f"build: {len(steps)} steps, none finished yet; journal: {out.journal_md}"]
    tried = Counter(s.outcome for s in steps if s.move is not None)
    lines = [
        f"build: {len(steps)} steps; best is step {best.step} (run {best.run}, verdict {best.measures.get('verdict', '?')}): {best.headline}",
        "  moves: " + (", ".join(f"{n} {outcome}" for outcome, n in tried.items()) or "none tried yet"),
    ]
    lines += [f"  step {s.step} failed: {s.move.action} = {s.move.value}: {s.error}" for s in steps if s.outcome == "failed" and s.move]
    cfg = DocpipeConfig.model_validate(best.config)
    done = {(s.move.action, repr(s.move.value)) for s in steps if s.move}
    signals = best.measures.get("signals") or [best.measures.get("verdict", "")]
    untried = [m for m in suggestions(signals, cfg) if (m.action, repr(m.value)) not in done]
    if untried:
        lines.append(f"  next move: {untried[0].action} = {untried[0].value} ({untried[0].why}); docpipe build continues from the journal")
    return lines + [f"  journal: {out.journal_md}"]


def _export(out: Layout) -> list[str]:
    path = out.export.result
    if not path.exists():
        return ["export: not made yet (docpipe export)"]
    r = ExportResult.model_validate_json(path.read_text(encoding="utf-8"))
    files = ", ".join(f"{p.file} ({p.gate})" for p in r.parity)
    if not r.passed:
        return [f"export: run {r.run_id} FAILED the parity gate: {files}; see {out.export.parity}"]
    return [f"export: {r.name} from run {r.run_id}: {files}; ollama create {r.name} -f {out.export.modelfile}"]
