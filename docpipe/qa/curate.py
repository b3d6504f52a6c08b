"""Keep only pairs a person would trust: a quote that is really in the source, an answer the
quote supports, a sensible question, no boilerplate, no duplicates. Every rejection keeps
its reason, so the dataset card can show where candidates were lost and why."""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from docpipe.config import GenerateConfig
from docpipe.contracts import Chunk, Citation, Document, ElementKind, QADraft, QAPair
from docpipe.qa.dedup import find_duplicates
from docpipe.runtime.citation import content_words, locate, normalize, support
from docpipe.store import stable_hash

# The funnel's stages, in the order candidates pass them (the card lists them so).
CITATION, SUPPORT, QUALITY, JUDGE, DEDUP = "citation", "support", "quality", "judge", "dedup"
STAGES = (CITATION, SUPPORT, QUALITY, JUDGE, DEDUP)
# Ends with a question mark, or opens with a question word (models drop the mark).
_QUESTION = re.compile(
    r"\?\s*$|^(who|whom|whose|what|when|where|which|why|how|is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|may|list|name|describe|explain)\b",
    re.I,
)
_PAGE_NUMBER = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$")


class Draft(QADraft):
    """A candidate as a generator wrote it, before any check, with where it came from."""

    chunk_id: Annotated[str, Field(description="Chunk.id of the chunk it was written from.")]
    tier: Annotated[str, Field(description="Agent tier that wrote it: structured | json | heuristic.")]
    producer: Annotated[str, Field(description="Model name, or 'extractive' for the built-in generator.")]

    @classmethod
    def of(cls, draft: QADraft, chunk_id: str, tier: str, producer: str) -> Draft:
        """The triple of any draft (an extractive rule's, the model's reply) with its provenance."""
        return cls(question=draft.question, answer=draft.answer, quote=draft.quote, chunk_id=chunk_id, tier=tier, producer=producer)


@dataclass(frozen=True)
class Rejection:
    draft: Draft
    stage: str
    reason: str

    @property
    def category(self) -> str:
        """The reason without its details: what the card counts."""
        return self.reason.split(" (")[0]

    def record(self) -> dict:
        return {**self.draft.model_dump(), "stage": self.stage, "reason": self.reason}


class Source:
    """A chunk with its document, to turn a quote into a citation that points into the document."""

    def __init__(self, chunk: Chunk, doc: Document):
        self.chunk, self.doc = chunk, doc
        paged = [el for el in doc.elements if el.page is not None]
        self._starts = [el.start for el in paged]
        self._pages = [el.page for el in paged]
        # A header or footer is boilerplate when it runs on: the same text on several pages.
        running = Counter(normalize(el.text) for el in doc.elements if el.kind in (ElementKind.header, ElementKind.footer))
        self._boilerplate = [
            (el.start, el.end)
            for el in doc.elements
            if el.kind in (ElementKind.header, ElementKind.footer) and running[normalize(el.text)] > 1
        ]
        # What a question may name besides the quote: the file, its headings in this chunk.
        headings = [el.text for el in doc.elements if el.kind == ElementKind.title and chunk.start <= el.start < chunk.end]
        self.context_words = content_words(" ".join([Path(doc.path).stem, *chunk.section, *headings]))

    def citation(self, quote: str) -> Citation | None:
        """The quote's citation, its span and text taken from the document itself; None when the quote is not in the chunk."""
        span = locate(quote, self.chunk.text)
        if span is None:
            return None
        start, end = self.chunk.start + span[0], self.chunk.start + span[1]
        at = bisect.bisect_right(self._starts, start) - 1
        page = self._pages[at] if at >= 0 else (self.chunk.pages[0] if self.chunk.pages else None)
        return Citation(path=self.doc.path, doc_id=self.doc.doc_id, page=page, quote=self.doc.text[start:end], start=start, end=end)

    def is_boilerplate(self, citation: Citation) -> bool:
        if _PAGE_NUMBER.match(normalize(citation.quote)):
            return True
        return any(s <= citation.start and citation.end <= e for s, e in self._boilerplate)


def check(draft: Draft, source: Source, cfg: GenerateConfig) -> QAPair | Rejection:
    """The pair with its verified citation, or the first check it fails."""
    citation = source.citation(draft.quote)
    if citation is None:
        return Rejection(draft, CITATION, "quote not in source")
    share = support(draft.answer, citation.quote)
    if share < cfg.min_support:
        return Rejection(draft, SUPPORT, f"answer not supported by quote ({share:.0%} of its words)")
    problem = _quality_problem(draft, citation, source, cfg)
    if problem:
        return Rejection(draft, QUALITY, problem)
    return QAPair(
        id=stable_hash(draft.chunk_id, draft.question, draft.answer)[:16],
        question=draft.question.strip(),
        answer=draft.answer.strip(),
        citation=citation,
        chunk_id=draft.chunk_id,
        section=source.chunk.section,
        tier=draft.tier,
        producer=draft.producer,
    )


def _quality_problem(draft: Draft, citation: Citation, source: Source, cfg: GenerateConfig) -> str | None:
    question, answer = draft.question.strip(), draft.answer.strip()
    if len(question) < cfg.min_question_chars:
        return "question too short"
    if len(question) > cfg.max_question_chars:
        return "question too long"
    if not _QUESTION.search(question):
        return "not a question"
    if len(answer) < cfg.min_answer_chars:
        return "answer too short"
    if len(answer) > cfg.max_answer_chars:
        return "answer too long"
    if source.is_boilerplate(citation):
        return "boilerplate quote (page number, running header or footer)"
    asked, answered = content_words(question), content_words(answer)
    yes_no = normalize(answer).split(" ", 1)[0].strip(",.!") in ("yes", "no")
    if not yes_no and (normalize(answer) in normalize(question) or (answered and answered <= asked)):
        return "answer restates the question"
    if len(asked) >= 2 and not asked & (content_words(citation.quote) | source.context_words):
        return "question not answerable from the quote"
    return None


@dataclass
class Curated:
    accepted: list[QAPair]
    rejected: list[Rejection]
    funnel: dict[str, int]  # candidates left after each stage, starting with "candidates"


def curate(
    drafts: Sequence[Draft],
    sources: dict[str, Source],
    cfg: GenerateConfig,
    judge: Callable[[QAPair], str | None] | None = None,
) -> Curated:
    """Run every check, then the optional judge (returns a reason to reject, or None), then dedup."""
    rejected: list[Rejection] = []
    passed: list[tuple[Draft, QAPair]] = []
    funnel = {"candidates": len(drafts)}
    for draft in drafts:
        result = check(draft, sources[draft.chunk_id], cfg)
        if isinstance(result, Rejection):
            rejected.append(result)
        else:
            passed.append((draft, result))
    left = len(drafts)
    for stage in (CITATION, SUPPORT, QUALITY):
        left -= sum(r.stage == stage for r in rejected)
        funnel[stage] = left
    if judge is not None:
        kept = []
        for draft, pair in passed:
            if reason := judge(pair):
                rejected.append(Rejection(draft, JUDGE, reason))
            else:
                kept.append((draft, pair))
        passed = kept
    funnel[JUDGE] = len(passed)
    duplicates = find_duplicates([(pair.question, pair.answer) for _, pair in passed], threshold=cfg.dedup_threshold)
    for index, (kept_index, why) in duplicates.dropped.items():
        rejected.append(Rejection(passed[index][0], DEDUP, f"duplicate ({why}) of {passed[kept_index][1].id}"))
    accepted = [passed[i][1] for i in duplicates.kept]
    funnel[DEDUP] = len(accepted)
    return Curated(accepted, rejected, funnel)
