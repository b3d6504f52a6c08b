"""Training examples of the documents themselves: each chunk's text, prompted by its document and section.

Questions about a passage teach the model what was asked; the passage itself teaches what the
document says, including what no question asked about, and ties that text to its file and page,
the way the answers cite it. The completion is the passage and its source line, in the answer
format every other example uses.
"""

from __future__ import annotations

from pathlib import PurePath

from docpipe.contracts import Chunk, TrainingRecord
from docpipe.qa.curate import Source
from docpipe.runtime.chat_format import render_answer, to_messages
from docpipe.store import stable_hash


def rehearsal_prompt(chunk: Chunk, page: int | None) -> str:
    """'What is written in handbook.pdf, page 3, under "Leave > Parental leave"?'"""
    where = [PurePath(chunk.path).name]
    if page is not None:
        where.append(f"page {page}")
    section = f' under "{" > ".join(chunk.section)}"' if chunk.section else ""
    return f"What is written in {', '.join(where)}{section}?"


def rehearsal_records(sources: list[Source]) -> list[TrainingRecord]:
    """One record per chunk with text: the prompt, and the chunk's text with its source line."""
    records = []
    for source in sources:
        chunk = source.chunk
        citation = source.citation(chunk.text)
        if citation is None or not chunk.text.strip():
            continue
        question = rehearsal_prompt(chunk, citation.page)
        records.append(
            TrainingRecord(
                id=stable_hash("rehearsal", chunk.id)[:16],
                question=question,
                answer=chunk.text.strip(),
                citation=citation,
                chunk_id=chunk.id,
                section=chunk.section,
                tier="heuristic",
                producer="document",
                kind="rehearsal",
                messages=to_messages(question, render_answer(chunk.text, citation)),
            )
        )
    return records
