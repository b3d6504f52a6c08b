"""How a question and its answer look to the model: the system prompt, the answer with its source
line, and the chat messages.

The same format is used for training, evaluation, `docpipe chat` and the exported Modelfile, so the
tuned model learns one way to cite and is always asked the same way.
"""

from __future__ import annotations

import re

from docpipe.contracts import Citation, TrainingRecord

SYSTEM_PROMPT = (
    "You answer questions about the user's documents. Answer only from those documents, briefly, "
    "and end with the source on its own line, as 'Source: <file>, p. <page>'. "
    "If the documents do not say, answer exactly: The documents do not say."
)
ABSTAIN_ANSWER = "The documents do not say."
_SOURCE_LINE = re.compile(r"\n*Source: (?P<path>.+?)(?:, p\. (?P<page>\d+))?\s*$")


def source_reference(citation: Citation) -> str:
    """'Source: guide.pdf, p. 3' (no page for formats without pages)."""
    page = f", p. {citation.page}" if citation.page is not None else ""
    return f"Source: {citation.path}{page}"


def render_answer(answer: str, citation: Citation | None) -> str:
    """The assistant turn a model is trained on: the answer, then its source on the last line."""
    return f"{answer.strip()}\n\n{source_reference(citation)}" if citation else answer.strip()


def parse_source_reference(text: str) -> tuple[str, int | None] | None:
    """(path, page) from a reply's last 'Source:' line, or None when it cites nothing."""
    match = _SOURCE_LINE.search(text)
    if not match:
        return None
    return match["path"], int(match["page"]) if match["page"] else None


def to_messages(question: str, assistant: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
        {"role": "assistant", "content": assistant},
    ]


def trained_system_prompt(first: list[TrainingRecord]) -> str:
    """The system message a model was trained with, from the dataset's first training record ("" when it had none);
    the default prompt when there is no record. Evaluation and export ask and write with it."""
    if not first:
        return SYSTEM_PROMPT
    opening = first[0].messages[0]
    return opening.content if opening.role == "system" else ""
