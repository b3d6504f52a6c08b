"""Terminal rendering: progress bars and summary tables. Stages never print; the CLI does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from docpipe.contracts import IngestReport
from docpipe.events import EventSink, StageEvent

console = Console(stderr=True)


class _IngestBar:
    """Files done of all, MB done, ETA; the bar advances by bytes so big files weigh more."""

    columns = (
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        TextColumn("{task.fields[files]}"),
        TextColumn("{task.fields[mb]}"),
        TimeRemainingColumn(),
    )

    def __init__(self, progress: Progress):
        self._progress = progress
        self._task = progress.add_task("reading", total=None, mb="", files="")

    def __call__(self, event: StageEvent) -> None:
        done, total = event.metrics.get("bytes_done", 0), event.metrics.get("bytes_total", 0)
        fields = {"files": f"{event.step}/{event.total} files", "mb": f"{done / 2**20:,.1f}/{total / 2**20:,.1f} MB"}
        if event.step:
            fields["description"] = f"{event.message[-40:]:<40}"
        self._progress.update(self._task, completed=done, total=total or 1, **fields)


class _ChunkBar:
    """Chunks done of all, candidates so far, ETA."""

    columns = (
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} chunks"),
        TextColumn("{task.fields[pairs]}"),
        TimeRemainingColumn(),
    )

    def __init__(self, progress: Progress):
        self._progress = progress
        self._task = progress.add_task("writing Q&A pairs", total=None, pairs="")

    def __call__(self, event: StageEvent) -> None:
        fields = {"description": f"{event.message[-40:]:<40}"} if event.step else {}
        self._progress.update(
            self._task, completed=event.step, total=event.total, pairs=f"{event.metrics.get('candidates', 0):.0f} candidates", **fields
        )


class _TrainBars:
    """Steps done of all per phase (SFT, DPO), with the latest loss, held-out loss and real tokens/s."""

    columns = (
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    )

    def __init__(self, progress: Progress):
        self._progress, self._tasks = progress, {}

    def __call__(self, event: StageEvent) -> None:
        if event.phase not in self._tasks:
            self._tasks[event.phase] = self._progress.add_task(event.phase, total=event.total, stats="")
        m = event.metrics
        stats = [
            f"loss {m['loss']:.3f}" if "loss" in m else "",
            f"held-out {m['eval_loss']:.3f}" if "eval_loss" in m else "",
            f"{m['tokens_per_s']:,.0f} tok/s" if m.get("tokens_per_s") else "",
        ]
        self._progress.update(self._tasks[event.phase], completed=event.step, total=event.total, stats="  ".join(s for s in stats if s))


class _AnswerBars:
    """Questions answered of all, per model (base, tuned, each GGUF), with ETA."""

    columns = (
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} answers"),
        TimeRemainingColumn(),
    )

    def __init__(self, progress: Progress):
        self._progress, self._tasks = progress, {}

    def __call__(self, event: StageEvent) -> None:
        if not event.phase:  # a step between the models: loading, writing a GGUF, scoring
            if event.message:
                self._progress.console.print(f"[dim]{event.message}[/dim]")
            return
        if event.phase not in self._tasks:
            self._tasks[event.phase] = self._progress.add_task(f"answering ({event.phase})", total=event.total)
        self._progress.update(self._tasks[event.phase], completed=event.step, total=event.total)


_BARS = {"ingest": _IngestBar, "generate": _ChunkBar, "train": _TrainBars, "evaluate": _AnswerBars}


@contextmanager
def progress(stage: str) -> Iterator[EventSink]:
    """An event sink that draws the stage's progress (bars with ETA; a spinner with the message for the others)."""
    bars = _BARS.get(stage)
    if bars is None:
        with console.status(stage) as status:
            yield lambda event: status.update(event.message)
        return
    with Progress(*bars.columns, console=console, transient=True, disable=not console.is_terminal) as rich_progress:
        yield bars(rich_progress)


def train_table(result) -> Table:
    table = Table(title=f"run {result.run_id}: {result.backend} on {result.device} in {result.wall_s:.0f} s")
    table.add_column("what", style="bold")
    table.add_column("figure")
    table.add_row(
        "base model",
        f"{result.base_model} ({result.base_source}"
        + (f", dequantised from {result.dequantised_from}" if result.dequantised_from else "")
        + ")",
    )
    table.add_row("why this backend", result.dispatch)
    for failure in result.fallbacks:
        table.add_row("[yellow]fell back[/yellow]", failure)
    for stage in (result.sft, result.dpo):
        if stage is None:
            continue
        losses = f"train {stage.train_loss[0].loss:.3f} -> {stage.train_loss[-1].loss:.3f}" if stage.train_loss else "no loss logged"
        held = f", best held-out {stage.best_eval_loss:.3f} at step {stage.best_step}" if stage.best_eval_loss is not None else ""
        early = " (stopped early)" if stage.stopped_early else ""
        resumed = f", resumed from step {stage.resumed_from_step}" if stage.resumed_from_step else ""
        table.add_row(f"{stage.stage} ({stage.backend})", f"{stage.steps} steps, {stage.epochs:g} epochs{early}{resumed}; {losses}{held}")
        table.add_row(f"{stage.stage} speed", f"{stage.tokens_per_s:,.0f} tokens/s, peak memory {stage.peak_memory_mb:,.0f} MB")
    table.add_row("threads", str(result.threads))
    table.add_row("adapter", result.adapter)
    return table


def dataset_table(report) -> Table:
    table = Table(title=f"{report.splits.get('train', 0)} train + {report.splits.get('eval', 0)} eval pairs in {report.seconds:.0f} s")
    table.add_column("what", style="bold")
    table.add_column("figure")
    table.add_row("documents covered", f"{report.documents_covered} / {report.documents_with_text} with text")
    table.add_row("chunks covered", f"{report.chunks_covered} / {report.chunks_with_content} with content")
    table.add_row("funnel", " -> ".join(f"{stage} {n}" for stage, n in report.funnel.items()))
    table.add_row("rejected", ", ".join(f"{why} {n}" for why, n in report.rejections.items()) or "none")
    table.add_row("tiers (accepted)", ", ".join(f"{tier} {t['accepted']}" for tier, t in report.tiers.items()))
    table.add_row("probes", f"paraphrase {report.splits.get('probes_paraphrase', 0)}, abstention {report.splits.get('probes_abstain', 0)}")
    table.add_row("DPO pairs", str(report.splits.get("dpo", 0)))
    table.add_row("model", report.llm.model)
    if failure := report.llm.agent.get("model never answered usefully"):
        table.add_row("[red]model failed[/red]", f"every pair came from the extractive generator; first error: {failure[:300]}")
    if report.uncovered:
        table.add_row("[red]not covered[/red]", ", ".join(report.uncovered))
    return table


def ingest_table(report: IngestReport) -> Table:
    table = Table(title=f"{report.parsed} of {report.files} files read in {report.seconds:.1f} s ({report.reused} reused)")
    for column in ("format", "files", "ok", "partial", "failed", "skipped", "engines", "first reason"):
        table.add_column(column, overflow="ellipsis", no_wrap=column != "first reason", max_width=70 if column == "first reason" else None)
    for fmt, s in report.formats.items():
        engines = ", ".join(f"{name} {n}" for name, n in s.engines.items())
        table.add_row(
            fmt,
            str(s.files),
            str(s.ok),
            _warn(s.partial, "yellow"),
            _warn(s.failed, "red"),
            str(s.skipped),
            engines,
            (s.reasons[0][:140] if s.reasons else ""),
        )
    return table


def _warn(n: int, colour: str) -> str:
    return f"[{colour}]{n}[/{colour}]" if n else "0"


def doctor_table(info: dict) -> Table:
    table = Table(title="docpipe doctor", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("found", overflow="fold")
    table.add_row("python", info["python"])
    table.add_row("platform", info["platform"])
    table.add_row("torch", info["torch"])
    table.add_row("training", info["training"])
    for extra, packages in info["packages"].items():
        table.add_row(f"docpipe\\[{extra}]", "  ".join(f"{n} {'yes' if ok else '[red]no[/red]'}" for n, ok in packages.items()))
    for name, where in info["programs"].items():
        table.add_row(f"program {name}", where or "[red]not found[/red]")
    table.add_row("tesseract languages", ", ".join(info["tesseract_languages"]) or "[red]none[/red]")
    for name, missing in info["engines"].items():
        table.add_row(f"engine {name}", "ready" if not missing else f"[red]missing {', '.join(missing)}[/red]")
    readable = [f for f, engines in info["formats"].items() if engines]
    unreadable = [f for f, engines in info["formats"].items() if not engines]
    table.add_row(f"formats readable ({len(readable)})", " ".join(readable))
    table.add_row(f"formats not readable ({len(unreadable)})", " ".join(unreadable) or "none")
    return table


def export_table(result) -> Table:
    table = Table(title=f"export {result.name}: run {result.run_id}, {result.base_model} ({result.merge_base}) in {result.wall_s:.0f} s")
    for column in ("file", "size", "written in", "token ids", "top-1", "mean KL", "gate"):
        table.add_column(column)
    colours = {"pass": "green", "fail": "red", "report": "yellow"}
    for p in result.parity:
        table.add_row(
            p.file,
            f"{p.size_mb:g} MB",
            f"{p.write_s:.1f} s",
            "same" if not p.token_mismatches else f"[red]{len(p.token_mismatches)} differ[/red]",
            "n/a" if p.top1_agreement is None else f"{p.top1_agreement:.3f}",
            "n/a" if p.mean_kl is None else f"{p.mean_kl:.2e}",
            f"[{colours[p.gate]}]{p.gate}[/{colours[p.gate]}]" + (f" ({p.reason})" if p.reason else ""),
        )
    for warning in result.warnings:
        table.caption = (table.caption + "\n" if table.caption else "") + f"note: {warning}"
    return table


def eval_table(report) -> Table:
    colours = {"ok": "green", "insufficient-data": "yellow"}
    colour = colours.get(report.verdict, "red")
    table = Table(title=f"run {report.run_id}: verdict [{colour}]{report.verdict}[/{colour}] ({report.engine}, {report.seconds:.0f} s)")
    table.add_column("set")
    labels = list(report.sets)
    for label in labels:
        table.add_column(f"{label}: correct", justify="right")
    for name in report.questions:
        cells = [_estimate(report.sets[label].get(name)) for label in labels]
        table.add_row(f"{name} (n={report.questions[name]})", *cells)
    for reason in report.reasons:
        table.caption = (table.caption + "\n" if table.caption else "") + reason
    return table


def _estimate(scores) -> str:
    if scores is None or scores.correct.value is None:
        return "n/a"
    e = scores.correct
    text = f"{e.value:.0%} ({e.low:.0%}-{e.high:.0%})"
    return f"[dim]{text} too few[/dim]" if e.too_small else text


def build_summary(result, layout) -> Table:
    """The screen after `docpipe build`: what was read and made, what the loop did, how good the model is, where it is."""

    table = Table(title=f"docpipe build: {result.loop.stop_reason} after {result.seconds / 60:.1f} min")
    table.add_column("what", style="bold")
    table.add_column("figure")
    if layout.ingest_report.is_file():
        ingest = IngestReport.model_validate_json(layout.ingest_report.read_text(encoding="utf-8"))
        failed = len(ingest.failures)
        table.add_row(
            "documents",
            f"{ingest.parsed} of {ingest.files} read" + (f", [yellow]{failed} not[/yellow] (ingest_report.json)" if failed else ""),
        )
    data = result.loop.best.measures.get("dataset") if result.loop.best else None
    if data:
        table.add_row(
            "dataset",
            f"{data['facts']} facts, {data['wordings']} question wordings, {data['passages']} passages, {data['refusals']} refusals; "
            f"held out {data['rephrased']} rephrased + {data['unseen']} unseen (the best step's)",
        )
    steps = [s for s in result.loop.steps if s.outcome != "refused"]
    refused = len(result.loop.steps) - len(steps)
    table.add_row("steps", f"{len(steps)} run, {sum(s.outcome == 'kept' for s in steps)} kept, {refused} moves refused")
    for step in steps:
        move = "baseline" if step.move is None else f"{step.move.action} = {step.move.value}"
        table.add_row(f"  {step.step}: {move}", f"{step.outcome}: {step.headline or step.error or ''}")
    best = result.loop.best
    if best is not None:
        table.add_row("best model", f"run {best.run}: {best.headline}")
        gain = best.measures.get("gain_correct")
        if gain and gain.get("value") is not None:
            table.add_row(
                "  vs base",
                f"{100 * gain['value']:+.0f} points correct on questions in new words ({100 * gain['low']:+.0f} to {100 * gain['high']:+.0f}, n={gain['n']})",
            )
    if result.export is not None:
        exported = layout.export
        table.add_row("export", f"{'passed' if result.export.passed else '[red]FAILED[/red]'} parity; {exported.root}")
        if result.export.modelfile:
            table.add_row("run it", f"ollama create {result.export.name} -f {result.export.modelfile} && ollama run {result.export.name}")
    table.add_row("journal", str(layout.journal_md))
    return table


def runs_table(layout) -> Table:
    """Every finished run with its headline measures, and the build loop's decision on it."""
    from docpipe.build.task import headline_figures
    from docpipe.contracts import EvalReport, TrainResult
    from docpipe.loop.journal import StepRecord
    from docpipe.store import read_records

    steps = read_records(layout.journal_jsonl, StepRecord) if layout.journal_jsonl.is_file() else []
    decided = {step.run: f"step {step.step}: {step.outcome}" for step in steps if step.run}
    best = layout.best.read_text(encoding="utf-8").strip() if layout.best.is_file() else ""
    table = Table(title=f"runs in {layout.root}")
    for column in ("run", "base model", "epochs", "verdict", "new-words F1 tuned / base", "loop"):
        table.add_column(column)
    for run in layout.finished_runs():
        result = TrainResult.model_validate_json(run.result.read_text(encoding="utf-8"))
        verdict, f1 = "not evaluated", ""
        if run.eval_report.is_file():
            report = EvalReport.model_validate_json(run.eval_report.read_text(encoding="utf-8"))
            figures = headline_figures(report)
            verdict = report.verdict
            f1 = " / ".join(_number(figures.get(f"{label}_new_words_f1")) for label in ("tuned", "base"))
        name = f"{run.id} (best)" if run.id == best else run.id
        table.add_row(name, result.base_model, f"{result.config.epochs:g}", verdict, f1, decided.get(run.id, ""))
    return table


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
