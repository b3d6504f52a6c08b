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
