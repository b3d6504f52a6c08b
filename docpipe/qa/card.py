"""The dataset card: the first screen says how much was made, from how much, what was lost
at each check and why, and who wrote the pairs."""

from __future__ import annotations

from collections.abc import Sequence

from docpipe.contracts import DatasetReport, QAPair
from docpipe.runtime.chat_format import render_answer

_STAGE_NAMES = {
    "candidates": "candidates written",
    "citation": "quote found in the source",
    "support": "answer supported by the quote",
    "quality": "passed the quality filters",
    "judge": "passed the judge (when enabled)",
    "dedup": "after removing duplicates = accepted",
}


def render_card(report: DatasetReport, examples: Sequence[QAPair]) -> str:
    lines = [
        "# Dataset card",
        "",
        f"**{report.splits.get('train', 0)} train and {report.splits.get('eval', 0)} eval pairs** from "
        f"{report.documents_covered} of {report.documents_with_text} documents with text "
        f"({report.documents} documents in all), {report.chunks_covered} of {report.chunks_with_content} chunks with content "
        f"({report.chunks} chunks in all). Every accepted pair's quote was found in its source document and its "
        f"answer checked against the quote. Model: {report.llm.model}"
        f"{'' if report.llm.trusted else ' (dropped after its trial)'}; {report.seconds:.0f} s.",
        "",
        "## Acceptance funnel",
        "",
        "| stage | pairs left | lost |",
        "|---|---:|---:|",
    ]
    previous = None
    for stage, left in report.funnel.items():
        lost = "" if previous is None else str(previous - left)
        lines.append(f"| {_STAGE_NAMES.get(stage, stage)} | {left} | {lost} |")
        previous = left
    lines += ["", "## Rejection reasons", "", "| reason | pairs |", "|---|---:|"]
    lines += [f"| {reason} | {n} |" for reason, n in report.rejections.items()] or ["| none | 0 |"]
    lines += ["", "## Who wrote the pairs", "", "| tier | candidates | accepted | share of accepted |", "|---|---:|---:|---:|"]
    accepted = sum(t["accepted"] for t in report.tiers.values()) or 1
    for tier, counts in sorted(report.tiers.items()):
        lines.append(f"| {tier} | {counts['candidates']} | {counts['accepted']} | {counts['accepted'] / accepted:.0%} |")
    agent = report.llm.agent
    if agent.get("model never answered usefully"):
        lines += ["", f"The model never gave a usable reply; first error: `{agent['model never answered usefully'][:300]}`"]
    if agent.get("model dropped after trial"):
        lines += [
            "",
            f"Only {agent.get('model trial acceptance %', 0)}% of the model's pairs passed the checks on the trial chunks, "
            "so it was not asked again: the other chunks were written by the extractive generator. "
            "Point `--model` at a larger model (a .gguf file or an API) for model-written pairs.",
        ]
    lines += [
        "",
        "Tiers: `structured` = the model's schema-constrained reply, `json` = its plain JSON reply after repair, "
        "`heuristic` = docpipe's extractive generator (where the model failed or fell short).",
    ]
    lines += ["", "## Files", "", "| file | records |", "|---|---:|"]
    lines += [f"| {name}.jsonl | {n} |" for name, n in report.splits.items()]
    lines += [
        "",
        "Also `alpaca/` and `sharegpt/` (train and eval in those formats), `manifest.json` (sources, config, "
        "prompts and model, by hash) and `report.json` (these figures).",
    ]
    if report.uncovered:
        lines += ["", "## Documents with text but no pairs", ""]
        lines += [f"- `{path}`: {why}" for path, why in report.uncovered.items()]
    usage = report.llm.usage
    if usage:
        lines += [
            "",
            "## Model calls",
            "",
            "| purpose | calls | cached | retries | failures | tokens in | tokens out | cost USD |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for purpose, u in usage.items():
            lines.append(
                f"| {purpose} | {u.calls} | {u.cache_hits} | {u.retries} | {u.failures} "
                f"| {u.prompt_tokens} | {u.completion_tokens} | {u.cost_usd:.4f} |"
            )
    if examples:
        lines += ["", "## Examples", ""]
        for pair in examples:
            answer = render_answer(pair.answer, pair.citation).replace("\n", " ")
            lines += [f"- **Q:** {pair.question}", f"  **A:** {answer}", f'  **Quote:** "{pair.citation.quote[:300]}"', ""]
    return "\n".join(lines).rstrip() + "\n"
