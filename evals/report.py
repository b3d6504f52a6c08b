"""The evaluation report a person reads: report.md, and report.html as one self-contained file (inline CSS, plots
as embedded PNGs). Both are drawn from the same sections, in the order a reader needs them: first what the model
can be trusted for, then the evidence. Every text that came from a document or a model is escaped."""

from __future__ import annotations

import base64
import html
import io
import math
import re
import textwrap
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docpipe.contracts import AnswerScore, Estimate, EvalQuestion, EvalRecord, EvalReport, PairedComparison, StageResult, TrainResult
from docpipe.errors import ErrorKind
from evals import EvalError

BASE, TUNED = "base", "tuned"
OUT_OF_CORPUS = "out_of_corpus"
SET_ORDER = ("seen", "rephrased", "unseen", "out_of_corpus", "user")
SET_MEANING = {
    "seen": "trained on, asked as trained",
    "rephrased": "trained facts, asked in new words",
    "unseen": "never trained on",
    "out_of_corpus": "the documents do not answer: it should abstain",
    "user": "your own questions",
}
VERDICT_HEADLINES = {
    "ok": "usable for questions its documents answer, within the limits below",
    "overfit": "it learned the training wordings, not the facts behind them",
    "undertrained": "it has not learned the documents well enough yet",
    "ungrounded": "its answers and citations are not backed by the documents",
    "over-refusing": "it refuses questions its documents do answer",
    "insufficient-data": "too few questions to say how good it is",
}
VERDICT_COLOURS = {
    "ok": "#1a7f37",
    "overfit": "#cf222e",
    "ungrounded": "#cf222e",
    "undertrained": "#bc4c00",
    "over-refusing": "#bc4c00",
    "insufficient-data": "#57606a",
}
MODEL_COLOURS = {BASE: "#8c959f", TUNED: "#0969da"}
OTHER_COLOURS = ("#8250df", "#bf8700", "#1a7f37", "#cf222e")
FUNNEL_STEPS = ("answers", "cited", "cited file exists", "right document", "passage supports the answer")
WORST_ANSWERS = 8  # cards per list in "worst answers"
LIST_LIMIT = 20  # questions per improvements / regressions list
DOCUMENTS_PLOTTED = 25  # the weakest documents drawn; the table lists all
Z95 = 1.959963984540054  # the intervals this module computes itself (Wilson) are 95%


# --- the blocks a section is made of: plain text inside, escaped only by the two renderers -----------------------


@dataclass
class _Banner:
    verdict: str
    headline: str
    trust: list[str]
    reasons: list[str]


@dataclass
class _Para:
    text: str
    muted: bool = False


@dataclass
class _Heading:
    text: str


@dataclass
class _Bullets:
    items: list[str]
    numbered: bool = False


@dataclass
class _Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class _Plot:
    draw: Callable[[], bytes]
    alt: str


@dataclass
class _Card:
    title: str
    scores: str
    answer: str
    reference: str
    source: str


@dataclass
class _Cards:
    cards: list[_Card]


@dataclass
class _Section:
    title: str
    blocks: list[Any] = field(default_factory=list)


# --- public ------------------------------------------------------------------------------------------------------


def render_markdown(report: EvalReport, records: list[EvalRecord], trained: TrainResult | None) -> str:
    """report.md: the verdict and what to trust first, then every section as tables (plots only in the HTML).

    Args:
        report: what `docpipe eval` found.
        records: every question with every model's answer (eval_questions.jsonl).
        trained: the run's train_result.json, for the loss curves; None when it is not at hand.
    """
    sections = _sections(report, records, trained)
    lines = [f"# Evaluation of run {_md(report.run_id)}", ""]
    for number, section in enumerate(sections):
        if number:
            lines += [f"## {_md(section.title)}", ""]
        for block in section.blocks:
            lines += [*_md_block(block), ""] if not isinstance(block, _Plot) else []  # a plot's numbers are in its table
    return "\n".join(lines).rstrip() + "\n"


def render_html(report: EvalReport, records: list[EvalRecord], trained: TrainResult | None) -> str:
    """report.html: one self-contained page (inline CSS, plots as base64 PNGs, no scripts, no external URLs).

    Raises:
        EvalError: matplotlib is not installed (`pip install 'docpipe[eval]'`).
    """
    sections = _sections(report, records, trained)
    body = [f"<h1>Evaluation of run {_h(report.run_id)}</h1>"]
    for number, section in enumerate(sections):
        heading = f"<h2>{_h(section.title)}</h2>" if number else ""
        body.append(f"<section>{heading}{''.join(_html_block(block) for block in section.blocks)}</section>")
    title = f"docpipe eval: {report.run_id} ({report.verdict})"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(title)}</title><style>{_CSS}</style></head>\n<body><main>{''.join(body)}</main></body></html>\n"
    )


def _sections(report: EvalReport, records: list[EvalRecord], trained: TrainResult | None) -> list[_Section]:
    return [
        _first_screen(report),
        _loss_section(report, trained),
        _scores_section(report),
        _citation_section(report, records),
        _abstention_section(report, records),
        _documents_section(report, records),
        _comparisons_section(report, records),
        _worst_section(report, records),
    ]


# --- sections ----------------------------------------------------------------------------------------------------


def _first_screen(report: EvalReport) -> _Section:
    """The verdict, what to trust, why, and each set's share of correct answers, tuned against base."""
    headline = VERDICT_HEADLINES.get(report.verdict, report.verdict)
    banner = _Banner(report.verdict, headline, report.trust or ["n/a: the evaluation said nothing about trust"], report.reasons)
    labels = [label for label in (_tuned(report), BASE if BASE in report.sets else None) if label]
    rows = [
        [_set_name(name), SET_MEANING.get(name, "")] + [_estimate(_scores(report, label, name, "correct")) for label in labels]
        for name in _set_names(report)
    ]
    table = _Table(["question set", "what it tests"] + [f"{label}: correct [95% interval], n" for label in labels], rows)
    return _Section(
        "", [banner, _Heading("Correct answers, by question set"), table, _Para(_READING, muted=True), _Para(_meta(report), muted=True)]
    )


def _loss_section(report: EvalReport, trained: TrainResult | None) -> _Section:
    section = _Section("Loss curves (training and held-out, per training stage)")
    if trained is None:
        section.blocks.append(_Para("n/a: the run's training result was not given, so there are no loss curves to show."))
        return section
    stages = _stages(trained)
    rows = [_loss_row(stage) for stage in stages]
    header = ["stage", "backend", "steps", "epochs", "first → final training loss", "best held-out loss (step)", "stopped early"]
    gap = "n/a" if report.loss_gap is None else f"{report.loss_gap:+.3f}"
    note = (
        f"Loss gap (best held-out loss minus the final training loss): {gap}. A large positive gap means the model fits "
        "its training answers much better than answers it was not trained on."
    )
    section.blocks += [
        _Plot(lambda: _plot_loss(stages), "training and held-out loss per step, per training stage"),
        _Table(header, rows),
        _Para(note),
    ]
    return section


def _scores_section(report: EvalReport) -> _Section:
    section = _Section("Scores per question set (95% intervals)")
    rows, small = [], []
    for name in _set_names(report):
        for label in _labels(report):
            scores = report.sets.get(label, {}).get(name)
            if scores is None:
                continue
            small += [f"{_set_name(name)} ({label}, n={scores.correct.n})"] if scores.correct.too_small else []
            cells = [_estimate(scores.correct, n=False)] + [_estimate(e, n=False, share=False) for e in (scores.f1, scores.key_facts)]
            rows.append([_set_name(name), label] + cells + [_n(scores.correct)])
    section.blocks += [
        _Plot(lambda: _plot_scores(report), "correct, token F1 and key facts per question set and model, with 95% intervals"),
        _Table(["question set", "model", "correct", "token F1", "key facts", "n"], rows),
    ]
    if small:
        section.blocks.append(_Para("Too small to say anything (the interval is too wide): " + "; ".join(small) + "."))
    return section


def _citation_section(report: EvalReport, records: list[EvalRecord]) -> _Section:
    label = _tuned(report)
    section = _Section(f"Citations: the {label or 'tuned'} model's answers to answerable questions, step by step")
    counts = _funnel(records, label) if label else []
    if not counts or not counts[0]:
        section.blocks.append(_Para("n/a: no answers of the tuned model to answerable questions."))
        return section
    rows = []
    for step, (name, count) in enumerate(zip(FUNNEL_STEPS, counts)):
        of_previous = _percent(count / counts[step - 1]) if step and counts[step - 1] else "n/a"
        rows.append([name, str(count), _estimate(_wilson(count, counts[0])), "—" if not step else of_previous])
    section.blocks += [
        _Plot(lambda: _plot_funnel(counts), "citation funnel: answers, cited, cited file exists, right document, passage supports"),
        _Table(["step", "answers", "share of all answers [95% interval], n", "share of the step before"], rows),
    ]
    return section


def _abstention_section(report: EvalReport, records: list[EvalRecord]) -> _Section:
    section = _Section("Abstention: out-of-corpus questions (should abstain) and answerable ones (should answer)")
    answerable = [name for name in _set_names(report) if name != OUT_OF_CORPUS]
    header = ["model", "abstains on out-of-corpus (higher is better)", "refuses answerable, all sets (lower is better)"]
    header += [f"refuses: {_set_name(name)}" for name in answerable]
    rows = []
    for label in _labels(report):
        refused = [_answer(r, label) for r in records if r.question.set != OUT_OF_CORPUS]
        refused = [a for a in refused if a is not None]
        row = [label, _estimate(_scores(report, label, OUT_OF_CORPUS, "abstained"))]
        row.append(_estimate(_wilson(sum(a.abstained for a in refused), len(refused))))
        rows.append(row + [_estimate(_scores(report, label, name, "abstained")) for name in answerable])
    section.blocks.append(_Table(header, rows))
    return section


def _documents_section(report: EvalReport, records: list[EvalRecord]) -> _Section:
    section = _Section("Accuracy per document (answerable questions, weakest first)")
    labels = [label for label in (_tuned(report), BASE) if label]
    per_document = _per_document(records, labels)
    if not per_document:
        section.blocks.append(_Para("n/a: no answerable question names its document."))
        return section
    rows = [[path] + [_estimate(shares[label]) for label in labels] for path, shares in per_document]
    section.blocks += [
        _Plot(lambda: _plot_documents(per_document[:DOCUMENTS_PLOTTED], labels), "share correct per document, with 95% intervals"),
        _Table(["document"] + [f"{label}: correct [95% interval], n" for label in labels], rows),
    ]
    return section


def _comparisons_section(report: EvalReport, records: list[EvalRecord]) -> _Section:
    section = _Section("Model against model, question by question (paired)")
    if not report.comparisons:
        section.blocks.append(_Para("n/a: no paired comparisons were made."))
        return section
    header = ["B vs A", "questions", "measure", "difference B − A [95% interval], n", "Wilcoxon p", "improvements", "regressions"]
    rows = [
        [
            f"{c.b} vs {c.a}",
            c.set or "all",
            c.measure,
            _difference(c.difference),
            _p_value(c.p_value),
            str(len(c.improvements)),
            str(len(c.regressions)),
        ]
        for c in report.comparisons
    ]
    section.blocks.append(_Table(header, rows))
    by_id = {record.question.id: record for record in records}
    for comparison in report.comparisons:
        if "+" not in (comparison.set or ""):  # a pooled comparison repeats its sets' lists
            section.blocks += _change_lists(comparison, by_id)
    return section


def _worst_section(report: EvalReport, records: list[EvalRecord]) -> _Section:
    label = _tuned(report)
    section = _Section(f"Worst answers of the {label or 'tuned'} model, beside the reference and the source")
    answered = [(r, _answer(r, label)) for r in records] if label else []
    answered = [(r, a) for r, a in answered if a is not None]
    lowest = sorted((p for p in answered if p[0].question.set != OUT_OF_CORPUS), key=lambda p: (p[1].key_facts, p[1].f1))
    invented = [p for p in answered if p[0].question.set == OUT_OF_CORPUS and not p[1].abstained]
    section.blocks.append(_Heading(f"Lowest key facts on answerable questions ({min(len(lowest), WORST_ANSWERS)} shown of {len(lowest)})"))
    section.blocks.append(_Cards([_card(r, a) for r, a in lowest[:WORST_ANSWERS]]) if lowest else _Para("n/a: no answers."))
    out_of_corpus = sum(1 for r, _ in answered if r.question.set == OUT_OF_CORPUS)
    shown = f"{min(len(invented), WORST_ANSWERS)} shown of {len(invented)}, among {out_of_corpus} out-of-corpus questions"
    section.blocks.append(_Heading(f"Out-of-corpus questions it answered instead of abstaining ({shown})"))
    if invented:
        section.blocks.append(_Cards([_card(r, a) for r, a in invented[:WORST_ANSWERS]]))
    else:
        section.blocks.append(_Para("None: it abstained on every one." if out_of_corpus else "n/a: no out-of-corpus questions."))
    return section


# --- what the sections compute -------------------------------------------------------------------------------------


_READING = (
    "Each number is followed by its 95% interval and n, the questions behind it. 'too small': the set has fewer questions "
    "than eval.min_questions, and its interval is too wide to say anything."
)


def _meta(report: EvalReport) -> str:
    models = "; ".join(f"{label} = {what}" for label, what in report.models.items())
    questions = ", ".join(f"{_set_name(name)} {count}" for name, count in report.questions.items())
    return (
        f"Answers generated by {report.engine}. Models: {models}. Questions per set: {questions or 'n/a'}. "
        f"Took {report.seconds:.0f} s (docpipe {report.docpipe_version})."
    )


def _stages(trained: TrainResult) -> list[StageResult]:
    return [trained.sft] + ([trained.dpo] if trained.dpo else [])


def _loss_row(stage: StageResult) -> list[str]:
    losses = stage.train_loss
    train = f"{losses[0].loss:.3f} → {losses[-1].loss:.3f}" if losses else "n/a"
    best = (
        "n/a"
        if stage.best_eval_loss is None
        else f"{stage.best_eval_loss:.3f} (step {stage.best_step if stage.best_step is not None else 'n/a'})"
    )
    return [
        stage.stage,
        stage.backend or "n/a",
        str(stage.steps),
        f"{stage.epochs:.2f}",
        train,
        best,
        "yes" if stage.stopped_early else "no",
    ]


def _funnel(records: list[EvalRecord], label: str) -> list[int]:
    """How many answers are left after each citation check, each step a subset of the one before."""
    answers = [a for r in records if r.question.set != OUT_OF_CORPUS and (a := _answer(r, label)) is not None]
    cited = [a for a in answers if a.cited]
    exists = [a for a in cited if a.citation_exists]
    right = [a for a in exists if a.citation_right_document]
    return [len(answers), len(cited), len(exists), len(right), sum(1 for a in right if a.citation_supports)]


def _per_document(records: list[EvalRecord], labels: list[str]) -> list[tuple[str, dict[str, Estimate]]]:
    """document -> model -> share correct, weakest (by the first model) first."""
    tallies: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for record in records:
        if record.question.set == OUT_OF_CORPUS or not record.question.path:
            continue
        for label in labels:
            if (answer := _answer(record, label)) is not None:
                tally = tallies[record.question.path][label]
                tally[0] += answer.correct
                tally[1] += 1
    rows = [(path, {label: _wilson(*counts.get(label, (0, 0))) for label in labels}) for path, counts in tallies.items()]
    return sorted(rows, key=lambda row: (_sort_value(row[1][labels[0]]), row[0]))


def _change_lists(comparison: PairedComparison, by_id: dict[str, EvalRecord]) -> list[Any]:
    blocks: list[Any] = []
    for title, ids in (("IMPROVEMENTS", comparison.improvements), ("REGRESSIONS", comparison.regressions)):
        if not ids:
            continue
        what = f"{comparison.b} right, {comparison.a} wrong" if title == "IMPROVEMENTS" else f"{comparison.a} right, {comparison.b} wrong"
        where = f"{comparison.set}, " if comparison.set else ""
        blocks.append(_Heading(f"{title} of {comparison.b} over {comparison.a} ({where}{comparison.measure}): {len(ids)}, {what}"))
        blocks.append(_Bullets([_change_item(by_id.get(i), i, comparison) for i in ids[:LIST_LIMIT]], numbered=True))
        if len(ids) > LIST_LIMIT:
            blocks.append(_Para(f"… and {len(ids) - LIST_LIMIT} more: eval_questions.jsonl has every answer.", muted=True))
    return blocks


def _change_item(record: EvalRecord | None, question_id: str, comparison: PairedComparison) -> str:
    if record is None:
        return f"question {question_id} (not in the records)"
    a, b = _answer(record, comparison.a), _answer(record, comparison.b)
    facts = f"key facts: {comparison.a} {_facts(a)} → {comparison.b} {_facts(b)}"
    return f"[{_set_name(record.question.set)}] {_clip(record.question.question, 300)} ({facts})"


def _card(record: EvalRecord, answer: AnswerScore) -> _Card:
    question = record.question
    scores = [_set_name(question.set), f"key facts {answer.key_facts:.2f}", f"token F1 {answer.f1:.2f}"]
    scores += ["abstained"] if answer.abstained else []
    scores += [f"cites {_place(answer.cited_path, answer.cited_page)}"] if answer.cited else ["no citation"]
    return _Card(
        _clip(question.question, 400), " · ".join(scores), _clip(answer.answer, 1200), _clip(question.reference, 800), _source(question)
    )


def _source(question: EvalQuestion) -> str:
    if question.set == OUT_OF_CORPUS and not question.path:
        return "none: the documents do not answer this question"
    quote = _clip(question.quote, 800) if question.quote else "no source passage recorded"
    return f"{_place(question.path, question.page)}: {quote}"


def _place(path: str | None, page: int | None) -> str:
    return f"{path or 'document n/a'}" + (f", p. {page}" if page is not None else "")


# --- small helpers -------------------------------------------------------------------------------------------------


def _labels(report: EvalReport) -> list[str]:
    return list(report.models) + [label for label in report.sets if label not in report.models]


def _tuned(report: EvalReport) -> str | None:
    labels = _labels(report)
    return TUNED if TUNED in labels else next((label for label in labels if label != BASE), None)


def _set_names(report: EvalReport) -> list[str]:
    present = {name for scores in report.sets.values() for name in scores} | set(report.questions)
    return [name for name in SET_ORDER if name in present] + sorted(present - set(SET_ORDER))


def _set_name(name: str) -> str:
    return name.replace("_", "-")


def _scores(report: EvalReport, label: str, set_name: str, measure: str) -> Estimate | None:
    scores = report.sets.get(label, {}).get(set_name)
    return getattr(scores, measure) if scores is not None else None


def _answer(record: EvalRecord, label: str | None) -> AnswerScore | None:
    return record.answers.get(label) if label else None


def _wilson(k: int, n: int) -> Estimate:
    """Wilson's 95% score interval for k of n (for shares this report counts itself)."""
    if n == 0:
        return Estimate(value=None, low=None, high=None, n=0)
    p, z2 = k / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return Estimate(value=p, low=max(0.0, centre - half), high=min(1.0, centre + half), n=n)


def _sort_value(estimate: Estimate) -> float:
    return 2.0 if estimate.value is None else estimate.value


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _estimate(estimate: Estimate | None, n: bool = True, share: bool = True) -> str:
    """'62% [48–75%], n=40' for a share, '0.62 [0.48–0.75], n=40' for a mean score (token F1, key facts), 'n/a (n=0)'."""
    if estimate is None:
        return "n/a"
    if estimate.value is None:
        return f"n/a (n={estimate.n})" if n else "n/a"
    value = _percent if share else (lambda x: f"{x:.2f}")
    text = value(estimate.value)
    if estimate.low is not None and estimate.high is not None:
        text += f" [{value(estimate.low)}–{value(estimate.high)}]"
    else:
        text += " [interval n/a]"
    return text + (f", {_n(estimate)}" if n else "")


def _n(estimate: Estimate) -> str:
    return f"n={estimate.n}" + (", too small" if estimate.too_small else "")


def _difference(estimate: Estimate) -> str:
    if estimate.value is None:
        return f"n/a (n={estimate.n})"
    interval = "[interval n/a]" if estimate.low is None or estimate.high is None else f"[{estimate.low:+.2f}, {estimate.high:+.2f}]"
    return f"{estimate.value:+.2f} {interval}, {_n(estimate)}"


def _p_value(p: float | None) -> str:
    if p is None:
        return "n/a (no differences)"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _facts(answer: AnswerScore | None) -> str:
    return "n/a" if answer is None else f"{answer.key_facts:.2f}"


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _model_colour(label: str, index: int) -> str:
    return MODEL_COLOURS.get(label, OTHER_COLOURS[index % len(OTHER_COLOURS)])


# --- plots (matplotlib's Agg canvas on a bare Figure: no pyplot, no global backend switch) ---------------------------


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise EvalError(
            "the HTML report's plots need matplotlib", kind=ErrorKind.backend_unavailable, hint="pip install 'docpipe[eval]'"
        ) from exc
    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _plot_text(text: str, limit: int = 48) -> str:
    # a '$' in a file name would start matplotlib's mathtext
    return _clip(text, limit).replace("$", r"\$")


def _plot_loss(stages: list[StageResult]) -> bytes:
    figure = _figure(5.2 * len(stages), 3.2)
    for axes, stage in zip(figure.subplots(1, len(stages), squeeze=False)[0], stages):
        if stage.train_loss:
            axes.plot([p.step for p in stage.train_loss], [p.loss for p in stage.train_loss], color="#0969da", lw=1.2, label="training")
        if stage.eval_loss:
            steps, losses = [p.step for p in stage.eval_loss], [p.loss for p in stage.eval_loss]
            axes.plot(steps, losses, color="#cf222e", marker="o", ms=4, lw=1.5, label="held-out")
        if stage.best_step is not None:
            axes.axvline(stage.best_step, color="#57606a", ls="--", lw=1, label=f"kept (step {stage.best_step})")
        if not stage.train_loss and not stage.eval_loss:
            axes.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=axes.transAxes)
        axes.set(title=_plot_text(f"{stage.stage.upper()} ({stage.backend or 'n/a'})"), xlabel="step", ylabel="loss")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return _png(figure)


def _plot_scores(report: EvalReport) -> bytes:
    names, labels = _set_names(report), _labels(report)
    figure = _figure(11, 3.4)
    width = 0.8 / max(len(labels), 1)
    for axes, (measure, title) in zip(figure.subplots(1, 3), (("correct", "correct"), ("f1", "token F1"), ("key_facts", "key facts"))):
        for index, label in enumerate(labels):
            for x, name in enumerate(names):
                estimate = _scores(report, label, name, measure)
                _bar(axes, x + (index - (len(labels) - 1) / 2) * width, width, estimate, _model_colour(label, index))
        axes.set_xticks(range(len(names)), [_tick(report, name) for name in names], fontsize=7)
        axes.set(title=title, ylim=(0, 1.05))
        axes.grid(axis="y", alpha=0.3)
    handles = [_patch(_model_colour(label, i), label) for i, label in enumerate(labels)]
    figure.legend(handles=handles, loc="outside right upper", fontsize=8)
    return _png(figure)


def _bar(axes: Any, x: float, width: float, estimate: Estimate | None, colour: str) -> None:
    if estimate is None or estimate.value is None:
        axes.text(x, 0.02, "n/a", ha="center", fontsize=6, rotation=90)
        return
    error = None
    if estimate.low is not None and estimate.high is not None:
        error = [[max(0.0, estimate.value - estimate.low)], [max(0.0, estimate.high - estimate.value)]]
    alpha, hatch = (0.35, "//") if estimate.too_small else (1.0, None)
    axes.bar(x, estimate.value, width, color=colour, alpha=alpha, hatch=hatch, yerr=error, capsize=2, error_kw={"lw": 0.8})


def _tick(report: EvalReport, name: str) -> str:
    counts = [s.correct.n for scores in report.sets.values() if (s := scores.get(name)) is not None]
    small = any(s.correct.too_small for scores in report.sets.values() if (s := scores.get(name)) is not None)
    return f"{textwrap.fill(name.replace('_', ' '), 9)}\nn={max(counts, default=0)}" + ("\ntoo small" if small else "")


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=_plot_text(label, 24))


def _plot_funnel(counts: list[int]) -> bytes:
    figure = _figure(7.5, 2.6)
    axes = figure.subplots()
    y = list(range(len(counts)))[::-1]
    axes.barh(y, counts, color=["#0969da", "#218bff", "#54aeff", "#80ccff", "#1a7f37"][: len(counts)])
    for row, count in zip(y, counts):
        axes.text(count, row, f"  {count} ({_percent(count / counts[0])})", va="center", fontsize=8)
    axes.set_yticks(y, list(FUNNEL_STEPS[: len(counts)]), fontsize=8)
    axes.set_xlim(0, counts[0] * 1.3)
    axes.set_xlabel("answers")
    return _png(figure)


def _plot_documents(per_document: list[tuple[str, dict[str, Estimate]]], labels: list[str]) -> bytes:
    figure = _figure(8, 1.0 + 0.3 * len(per_document))
    axes = figure.subplots()
    for index, label in enumerate(labels):
        points = [(row, shares[label]) for row, (_, shares) in enumerate(per_document) if shares[label].value is not None]
        ys = [len(per_document) - 1 - row + (0.15 if index == 0 else -0.15) for row, _ in points]
        xs = [e.value for _, e in points]
        errors = [[max(0.0, e.value - (e.low or 0)) for _, e in points], [max(0.0, (e.high or 0) - e.value) for _, e in points]]  # rounding
        axes.errorbar(xs, ys, xerr=errors, fmt="o", ms=4, capsize=2, color=_model_colour(label, index), label=label)
    axes.set_yticks(range(len(per_document)), [_plot_text(path) for path, _ in reversed(per_document)], fontsize=7)
    axes.set(xlim=(-0.02, 1.02), xlabel="share correct (95% interval)")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return _png(figure)


# --- markdown ------------------------------------------------------------------------------------------------------

# backslash, code, emphasis, HTML tags, table pipes; and a "(" or "[" right after "]", which would make a link
_MD_SPECIAL = re.compile(r"([\\`*<>|])|(?<=\])([(\[])")


def _md(text: str) -> str:
    """One line of text, safe in markdown: no HTML tags, links, code, emphasis or table breaks."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), " ".join(str(text).split()))


def _md_block(block: Any) -> list[str]:
    if isinstance(block, _Banner):
        lines = [f"**Verdict: {_md(block.verdict.upper())}**: {_md(block.headline)}.", "", "What you can and cannot trust it for:"]
        lines += [f"- {_md(line)}" for line in block.trust] + ["", "Why:"]
        return lines + ([f"- {_md(line)}" for line in block.reasons] or ["- n/a: no reasons given"])
    if isinstance(block, _Para):
        return [_md(block.text)]
    if isinstance(block, _Heading):
        return [f"### {_md(block.text)}"]
    if isinstance(block, _Bullets):
        return [f"{f'{i}.' if block.numbered else '-'} {_md(item)}" for i, item in enumerate(block.items, 1)]
    if isinstance(block, _Table):
        lines = ["| " + " | ".join(_md(cell) for cell in block.header) + " |", "|" + "---|" * len(block.header)]
        return lines + ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in block.rows]
    if isinstance(block, _Cards):
        return [line for card in block.cards for line in _md_card(card)]
    raise TypeError(f"no markdown for {type(block).__name__}")


def _md_card(card: _Card) -> list[str]:
    return [
        f"**Q:** {_md(card.title)}",
        _md(card.scores),
        f"> **Answer:** {_md(card.answer)}",
        ">",
        f"> **Reference:** {_md(card.reference)}",
        ">",
        f"> **Source:** {_md(card.source)}",
        "",
    ]


# --- HTML ----------------------------------------------------------------------------------------------------------


def _h(text: str) -> str:
    return html.escape(str(text), quote=True)


def _html_block(block: Any) -> str:
    if isinstance(block, _Banner):
        return _html_banner(block)
    if isinstance(block, _Para):
        return f'<p class="muted">{_h(block.text)}</p>' if block.muted else f"<p>{_h(block.text)}</p>"
    if isinstance(block, _Heading):
        return f"<h3>{_h(block.text)}</h3>"
    if isinstance(block, _Bullets):
        tag = "ol" if block.numbered else "ul"
        return f"<{tag}>" + "".join(f"<li>{_h(item)}</li>" for item in block.items) + f"</{tag}>"
    if isinstance(block, _Table):
        head = "".join(f"<th>{_h(cell)}</th>" for cell in block.header)
        rows = "".join("<tr>" + "".join(_html_cell(cell) for cell in row) + "</tr>" for row in block.rows)
        return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'
    if isinstance(block, _Plot):
        data = base64.b64encode(block.draw()).decode("ascii")
        return f'<figure><img alt="{_h(block.alt)}" src="data:image/png;base64,{data}"></figure>'
    if isinstance(block, _Cards):
        return "".join(_html_card(card) for card in block.cards)
    raise TypeError(f"no HTML for {type(block).__name__}")


def _html_cell(cell: str) -> str:
    return f'<td class="too-small">{_h(cell)}</td>' if cell.endswith("too small") else f"<td>{_h(cell)}</td>"


def _html_banner(banner: _Banner) -> str:
    colour = VERDICT_COLOURS.get(banner.verdict, "#57606a")
    trust = "".join(f"<li>{_h(line)}</li>" for line in banner.trust)
    reasons = "".join(f"<li>{_h(line)}</li>" for line in banner.reasons) or "<li>n/a: no reasons given</li>"
    return (
        f'<div class="verdict" style="--verdict: {colour}"><div class="verdict-head"><span class="verdict-name">'
        f'{_h(banner.verdict.upper())}</span><span class="verdict-line">{_h(banner.headline)}</span></div>'
        f'<div class="verdict-body"><div><h3>What you can and cannot trust it for</h3><ul>{trust}</ul></div>'
        f"<div><h3>Why</h3><ul>{reasons}</ul></div></div></div>"
    )


def _html_card(card: _Card) -> str:
    return (
        f'<article class="card"><h4>{_h(card.title)}</h4><p class="muted">{_h(card.scores)}</p><div class="columns">'
        f'<div><div class="tag">tuned answer</div><p>{_h(card.answer)}</p></div>'
        f'<div><div class="tag">reference</div><p>{_h(card.reference)}</p></div>'
        f'<div><div class="tag">source quote</div><p>{_h(card.source)}</p></div></div></article>'
    )


_CSS = """
body { margin: 0; background: #f6f8fa; color: #1f2328; font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 14px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-top: 14px; border-top: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 18px 0 6px; }
h4 { font-size: 15px; margin: 0 0 2px; overflow-wrap: anywhere; }
.verdict { border: 2px solid var(--verdict); border-radius: 8px; overflow: hidden; margin-bottom: 18px; }
.verdict-head { background: var(--verdict); color: #fff; padding: 12px 18px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
.verdict-name { font-size: 26px; font-weight: 700; letter-spacing: .04em; }
.verdict-line { font-size: 17px; }
.verdict-body { display: grid; grid-template-columns: 3fr 2fr; gap: 8px 28px; padding: 4px 18px 10px; }
.verdict-body h3 { margin-top: 10px; }
.verdict-body ul { margin: 0; padding-left: 20px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fbfcfd; }
figure { margin: 8px 0; }
figure img { max-width: 100%; height: auto; }
td.too-small { background: #fff8c5; color: #7d4e00; }
.muted { color: #57606a; font-size: 13px; }
ol, ul { padding-left: 24px; }
li { margin: 2px 0; overflow-wrap: anywhere; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.card .columns { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 14px; }
.card .columns p { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 13px; }
.tag { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: #57606a; font-weight: 600; }
"""
