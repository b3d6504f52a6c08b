"""DPO preference pairs: for a train question, the grounded, cited answer is chosen over an
answer that is ungrounded or cites the wrong source.

The rejected side is, by preference, a real failure of the generating model on the same
chunk (its answer failed the citation or support check); otherwise one of three
constructed failures, taken in turn: another document's answer, the right answer with no
source, and the right answer citing another document.
"""

from __future__ import annotations

from collections.abc import Sequence

from docpipe.contracts import PreferencePair, QAPair
from docpipe.qa.curate import CITATION, SUPPORT, Rejection
from docpipe.runtime.chat_format import SYSTEM_PROMPT, render_answer, source_reference

CONSTRUCTED = ("other document's answer", "uncited answer", "wrong source")


def preference_pairs(train: Sequence[QAPair], rejected: Sequence[Rejection]) -> list[PreferencePair]:
    """One preference record per train pair (TRL's conversational prompt/chosen/rejected format)."""
    failures: dict[str, list[Rejection]] = {}
    for rejection in rejected:
        if rejection.stage in (CITATION, SUPPORT) and rejection.draft.tier != "heuristic" and rejection.draft.answer.strip():
            failures.setdefault(rejection.draft.chunk_id, []).append(rejection)
    records = []
    for index, pair in enumerate(train):
        other = _from_other_document(train, index)
        if failures.get(pair.chunk_id):
            failure = failures[pair.chunk_id].pop()
            kind, bad = (
                f"model answer that failed the {failure.stage} check",
                f"{failure.draft.answer.strip()}\n\n{source_reference(pair.citation)}",
            )
        elif other is None:
            kind, bad = CONSTRUCTED[1], pair.answer.strip()
        else:
            kind = CONSTRUCTED[index % len(CONSTRUCTED)]
            bad = {
                CONSTRUCTED[0]: render_answer(other.answer, other.citation),
                CONSTRUCTED[1]: pair.answer.strip(),
                CONSTRUCTED[2]: render_answer(pair.answer, other.citation),
            }[kind]
        records.append(
            PreferencePair(
                id=pair.id,
                prompt=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": pair.question}],
                chosen=[{"role": "assistant", "content": render_answer(pair.answer, pair.citation)}],
                rejected=[{"role": "assistant", "content": bad}],
                rejected_kind=kind,
            )
        )
    return records


def _from_other_document(train: Sequence[QAPair], index: int) -> QAPair | None:
    """The next pair (cyclically) whose source is another document, or None when there is one document."""
    here = train[index].citation.doc_id
    for step in range(1, len(train)):
        candidate = train[(index + step) % len(train)]
        if candidate.citation.doc_id != here:
            return candidate
    return None
