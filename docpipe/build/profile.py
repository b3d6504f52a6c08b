"""The corpus profile and the starting settings the `ProfilerAgent` derives from it.

The profile is measured, not guessed: documents and formats, what could not be read, sizes, the
share of non-ASCII letters (a crude language signal), structure (headings, pages), duplicated chunk
text, facts per chunk, and the hardware. The heuristic tier turns it into the baseline: chunk size
from the document sizes, the knowledge recipe's wordings per fact, and the training time its
exposures need at the backend's measured speed, capped so that a step fits the build's budget.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from docpipe.agents.base import BaseAgent
from docpipe.chunk import chunk_document
from docpipe.contracts import Document
from docpipe.qa.extractive import information_units
from docpipe.qa.generate import count_tokens
from docpipe.runtime.citation import normalize
from docpipe.runtime.hardware import Hardware


class CorpusProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: int
    failed: int
    formats: dict[str, int]
    chars: int
    median_document_chars: int
    non_ascii_share: float = Field(description="Share of letters outside ASCII: near 0 for English, high for other scripts.")
    with_headings: float = Field(description="Share of documents with a heading structure.")
    with_pages: float = Field(description="Share of documents with pages.")
    chunks: int
    duplicate_chunk_share: float
    facts: int = Field(description="Information units (sentences, list items, table rows) in all chunks.")
    facts_per_chunk: float
    cores: int
    gpu: str | None


def profile_corpus(docs: list[Document], hardware: Hardware, chunk_tokens: int = 384) -> CorpusProfile:
    readable = [d for d in docs if d.text.strip()]
    chunks = [c for d in readable for c in chunk_document(d, count_tokens, chunk_tokens)]
    texts = Counter(normalize(c.text) for c in chunks)
    facts = [information_units(c.text) for c in chunks]
    letters = [ch for d in readable for ch in d.text if ch.isalpha()]
    return CorpusProfile(
        documents=len(docs),
        failed=sum(d.status.value == "failed" for d in docs),
        formats=dict(Counter(d.format for d in docs).most_common()),
        chars=sum(len(d.text) for d in readable),
        median_document_chars=int(statistics.median([len(d.text) for d in readable])) if readable else 0,
        non_ascii_share=round(sum(not ch.isascii() for ch in letters) / len(letters), 3) if letters else 0.0,
        with_headings=round(sum(any(el.section for el in d.elements) for d in readable) / max(len(readable), 1), 2),
        with_pages=round(sum(any(el.page for el in d.elements) for d in readable) / max(len(readable), 1), 2),
        chunks=len(chunks),
        duplicate_chunk_share=round(sum(n - 1 for n in texts.values()) / max(len(chunks), 1), 3),
        facts=sum(facts),
        facts_per_chunk=round(sum(facts) / max(len(chunks), 1), 2),
        cores=hardware.cores,
        gpu=hardware.cuda or ("mps" if hardware.mps else None),
    )


class StartSettings(BaseModel):
    """The baseline's settings: what the loop starts from."""

    model_config = ConfigDict(extra="ignore")

    chunk_tokens: int = Field(ge=64, le=2048)
    phrasings_per_fact: int = Field(ge=1, le=6)
    time_budget_minutes: float = Field(gt=0, le=10**6, description="Training time of one step.")
    why: str = Field(default="", max_length=600)


@dataclass(frozen=True)
class ProfileTask:
    profile: CorpusProfile
    budget_minutes: float  # the whole build's
    target_exposures: int = 12  # train.target_exposures
    wordings: int = 3  # the knowledge recipe's (generate.phrasings_per_fact)
    # Training tokens per fact per exposure, its share of the rehearsal and refusal examples and the system prompt
    # included: 26,737 tokens per epoch for the 111 facts of examples/docs at 2.86 wordings each.
    tokens_per_fact: float = 84.0
    tokens_per_s: float = 188.0  # the backend's measured training speed: hf on cpu in trainers.exposures.TOKENS_PER_S


class ProfilerAgent(BaseAgent[ProfileTask, StartSettings]):
    response_model = StartSettings
    system_prompt = (
        "You choose the starting settings for fine-tuning a small model on a corpus, from the corpus profile and the time "
        'budget. Reply with JSON only: {"chunk_tokens": ..., "phrasings_per_fact": ..., "time_budget_minutes": ..., "why": "..."}'
    )

    def build_prompt(self, task: ProfileTask) -> str:
        return f"Profile: {task.profile.model_dump_json()}\nWhole build budget: {task.budget_minutes:g} minutes."

    def heuristic(self, task: ProfileTask) -> StartSettings:
        p = task.profile
        chunk_tokens = 256 if p.median_document_chars < 1500 else 384  # short documents: smaller chunks keep facts apart
        # The baseline is the whole knowledge recipe, trained for its exposures when the budget allows: on examples/docs
        # it made a better model than two steps with a quarter of the budget's training each (README, Benchmarks).
        # A step may take up to 45% of the budget, so that its eval and the export fit; what is left buys the moves.
        needed = p.facts * task.tokens_per_fact * task.target_exposures / task.tokens_per_s / 60
        cap = 0.45 * task.budget_minutes
        train_minutes = round(max(2.0, min(needed, cap)), 1)
        why = (
            f"{p.documents} documents, {p.facts} facts in {p.chunks} chunks; median document {p.median_document_chars} characters "
            f"-> chunks of {chunk_tokens} tokens; {task.wordings} wordings per fact; {task.target_exposures} exposures per fact "
            f"need about {needed:.1f} min at ~{task.tokens_per_s:g} tokens/s -> {train_minutes:g} min of training per step"
            + (f" (capped at 45% of the {task.budget_minutes:g}-minute budget)" if needed > cap else "")
        )
        return StartSettings(chunk_tokens=chunk_tokens, phrasings_per_fact=task.wordings, time_budget_minutes=train_minutes, why=why)
