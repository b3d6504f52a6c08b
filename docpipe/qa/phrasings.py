"""Several wordings of each fact, so the model learns the fact and not one phrasing.

A small model asked each fact in one wording learns to answer that wording; with several
differently worded questions per fact, the fact becomes retrievable from wordings it never saw
(Physics of Language Models 3.1: a 124M model went from about 10% to 96% on held-out questions
with five rewrites per fact; Ovadia et al. 2023 gained with every paraphrase added). Wordings come
from the rule-based rewording (other question frames, synonyms, reordering), a question that
names the document, and, with a trusted model, the model's own rewording.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePath

from docpipe.contracts import QAPair
from docpipe.qa.extractive import paraphrase

Reword = Callable[[str], "str | None"]  # a model's rewording of a question, None when it has none
DISTINCT = 0.8  # wordings overlapping less than this share of words are different wordings (the dedup's threshold)
_ATTEMPTS = 8  # rule rewordings tried per question (`paraphrase` picks among its candidates by seed)


def wordings(pair: QAPair, count: int, reword: Reword | None = None) -> list[str]:
    """Up to `count` questions that ask the pair's fact: its own question first, then rewordings.

    Each wording keeps the question's names, numbers and quoted titles, and overlaps every other by
    less than DISTINCT of its words; the last is the one least like the rest (a split holds it out,
    and drops it as a leak when it is still a near-duplicate of a trained one).
    """
    question = pair.question
    candidates = [question]
    if reword is not None:
        candidates.append(reword(question) or "")
    candidates += [paraphrase(question, seed) or "" for seed in range(_ATTEMPTS)]
    candidates += [_naming_document(text, pair.citation.path) for text in (question, candidates[1])]
    chosen: list[str] = []
    for text in candidates:
        if len(chosen) >= count:
            break
        if text and all(_jaccard(text, other) < DISTINCT for other in chosen):
            chosen.append(text)
    if len(chosen) > 2:  # the wording least like the others last: the one a split holds out
        rest = chosen[1:]
        last = min(rest, key=lambda text: max(_jaccard(text, other) for other in chosen if other != text))
        chosen = [question, *(t for t in rest if t != last), last]
    return chosen


def _naming_document(question: str, path: str) -> str:
    """'According to handbook.pdf, what ...?': the wording that ties the fact to its document."""
    name = PurePath(path).name
    if name.lower() in question.lower():
        return ""
    return f"According to {name}, {question[:1].lower() + question[1:]}" if question[:2] != "I " else ""


def _jaccard(a: str, b: str) -> float:
    words_a, words_b = set(re.findall(r"[^\W_]+", a.lower())), set(re.findall(r"[^\W_]+", b.lower()))
    return len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 1.0
