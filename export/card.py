"""The model card (export/README.md): what the model is, how it was made, how far each file can be
trusted (the parity figures and, once `docpipe eval` has run, the evaluation), and how to run it."""

from __future__ import annotations

from pathlib import Path

from docpipe.contracts import EvalReport, ExportResult, TrainResult
from docpipe.layout import Layout


def model_card(result: ExportResult, trained: TrainResult, layout: Layout) -> str:
    stages = [s for s in (trained.sft, trained.dpo) if s]
    lines = [
        f"# {result.name}",
        "",
        f"A fine-tune of **{trained.base_model}** on the documents in `{layout.root.resolve()}`, made by docpipe "
        f"{result.docpipe_version}. It answers questions about those documents and ends each answer with its source "
        "(document and page).",
        "",
        "## Run it",
        "",
        "```bash",
        *ollama_commands(result),
        f"docpipe chat {result.name}-{result.modelfile_quantization}.gguf   # or without Ollama, in llama-cpp-python",
        "```",
        "",
        "## How it was made",
        "",
        f"- Base: {trained.base_model} ({trained.base_source}; licence: {trained.base_license or 'unknown'}); "
        f"the adapter was merged into {result.merge_base} weights.",
        f"- Training run `{trained.run_id}`: {trained.backend} on {trained.device}; dataset SHA-256 `{trained.dataset_sha256[:16]}…`.",
        *(
            f"- {s.stage.upper()}: {s.steps} steps, {s.epochs:g} epochs, best held-out loss "
            f"{_fmt(s.best_eval_loss)} at step {s.best_step}{', stopped early' if s.stopped_early else ''}."
            for s in stages
        ),
        "",
        "## Evaluation",
        "",
        _evaluation(layout.run(trained.run_id).eval_report),
        "",
        "## Parity: does each file behave like the trained model?",
        "",
        "Every probe string and chat prompt must tokenise to the same ids in llama.cpp as in training; on held-out "
        "chats, llama.cpp's next-token distributions are compared with the trained model's (transformers, float32).",
        "",
        "| file | size | same token ids | top-1 agreement | mean KL (nats) | gate |",
        "|---|---|---|---|---|---|",
        *(
            f"| {p.file} | {p.size_mb:g} MB | {'yes' if not p.token_mismatches else f'no ({len(p.token_mismatches)})'} "
            f"| {_fmt(p.top1_agreement, '.3f')} | {_fmt(p.mean_kl, '.2e')} | {p.gate}{f': {p.reason}' if p.reason else ''} |"
            for p in result.parity
        ),
        "",
    ]
    if result.warnings:
        lines += ["## Notes", "", *(f"- {w}" for w in result.warnings), ""]
    return "\n".join(lines)


def ollama_commands(result: ExportResult, modelfile: str = "Modelfile") -> list[str]:
    """The exact lines a user runs (Ollama reads FROM relative to the Modelfile, so they work from anywhere)."""
    return [f"ollama create {result.name} -f {modelfile}", f"ollama run {result.name}"]


def _evaluation(path: Path) -> str:
    """The eval's headline: the verdict, why, and the tuned model against its base on each question set."""
    if not path.is_file():
        return "Not evaluated yet: `docpipe eval` writes its summary here."
    report = EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    lines = [f"Verdict: **{report.verdict}** ({report.engine}).", "", *(f"- {line}" for line in report.trust + report.reasons), ""]
    lines += ["| question set | n | tuned: correct | base: correct |", "|---|---|---|---|"]
    tuned, base = report.sets.get("tuned", {}), report.sets.get("base", {})
    for name, n in report.questions.items():
        if n:
            lines.append(f"| {name} | {n} | {_share(tuned.get(name))} | {_share(base.get(name))} |")
    return "\n".join(lines)


def _share(scores) -> str:
    if scores is None or scores.correct.value is None:
        return "n/a"
    e = scores.correct
    return f"{e.value:.0%} ({e.low:.0%}-{e.high:.0%})" + (" (too few)" if e.too_small else "")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)
