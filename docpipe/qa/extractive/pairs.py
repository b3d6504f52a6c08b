"""Choosing the pairs: every rule's candidates for a chunk, checked and picked best first (`extractive_pairs`)."""

from __future__ import annotations

import functools
import re
from collections import Counter

from docpipe.contracts import Chunk
from docpipe.qa.extractive.layout import _layout, _Span
from docpipe.qa.extractive.parse import _nlp, _parsed, _to_parse, _with_context
from docpipe.qa.extractive.rules import (
    RuleDraft,
    _Candidate,
    _contents,
    _dash_terms,
    _definitions,
    _fallbacks,
    _fields,
    _heading_field,
    _heading_rule,
    _labels,
    _last_resort,
    _lists,
    _regex_numbers,
    _source,
    _tables,
)
from docpipe.qa.extractive.topics import _PRONOUN_WORD
from docpipe.runtime.citation import content_words, normalize

MIN_SUPPORT = 0.6


# citation.normalize reads character by character: a chunk's quotes and answers come up again and again.
_normalize = functools.lru_cache(maxsize=16384)(normalize)
_content = functools.lru_cache(maxsize=16384)(lambda text: frozenset(content_words(text)))


def _valid(draft: RuleDraft, text: str) -> bool:
    q, a = draft.question, draft.answer
    if not (12 <= len(q) <= 300 and q.endswith("?")) or "??" in q or "  " in q or " ?" in q:
        return False
    if _PRONOUN_WORD.search(re.sub(r'"[^"]*"', "", q)) or not draft.quote or text.find(draft.quote) < 0:
        return False
    answer_words = _content(a)
    if answer_words and len(answer_words & _content(draft.quote)) / len(answer_words) < MIN_SUPPORT:
        return False  # the same share as citation.support, from cached word sets
    na = _normalize(a)
    return bool(na) and na not in _normalize(q) and bool(answer_words - _content(q))


def _question_key(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", _normalize(question)).split())


def _select(candidates: list[_Candidate], text: str, limit: int) -> list[RuleDraft]:
    """Best first, each kind and each quote worth less every time it is used; checked as chosen."""
    pool = list(candidates)
    chosen: list[RuleDraft] = []
    questions: set[str] = set()
    kinds: Counter[str] = Counter()
    quotes: Counter[str] = Counter()
    while pool and len(chosen) < limit:
        best = max(
            range(len(pool)), key=lambda i: (pool[i].score - 0.15 * kinds[pool[i].draft.kind] - 0.5 * quotes[pool[i].draft.quote], -i)
        )
        draft = pool.pop(best).draft
        key = _question_key(draft.question)
        if key in questions or not _valid(draft, text):
            continue
        questions.add(key)
        kinds[draft.kind] += 1
        quotes[draft.quote] += 1
        chosen.append(draft)
    return chosen


def extractive_pairs(chunk: Chunk, limit: int) -> list[RuleDraft]:
    """Up to `limit` question/answer pairs from the chunk's own text, best first.

    Each pair quotes a verbatim span of `chunk.text` that supports its answer; every chunk with
    some real text yields at least one pair (when `limit` >= 1).
    """
    if limit <= 0 or not chunk.text.strip():
        return []
    text = chunk.text
    layout = _layout(text, chunk.section)
    source = _source(chunk)
    candidates = _tables(layout, chunk, text)
    candidates += _definitions(layout.sentences) + _dash_terms(layout) + _lists(layout, source, chunk, text)
    candidates += _fields(layout, source, text) + _contents(layout, source) + _heading_field(layout, chunk, text, source)
    topics: dict[_Span, str] = {}  # sentence -> the noun phrase it is about, from the parse
    if _nlp() is None:
        parsed = _regex_numbers(layout.sentences, source)
    else:
        quoted = {c.draft.quote for c in candidates}  # sentences a structural rule asked about already
        parsed = _parsed(_to_parse(layout, limit, {s for s in layout.sentences if s.quote in quoted}), topics)
    candidates += [_with_context(c, source) for c in parsed]
    candidates += _heading_rule(layout, chunk, topics) + _labels(layout, source) + _fallbacks(layout, source, topics)
    return _select(candidates, text, limit) or _select(_last_resort(layout, source), text, limit)
