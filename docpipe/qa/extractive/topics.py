"""Noun phrases: what a sentence is about (without a parse) and how a phrase is fitted into a question."""

from __future__ import annotations

import re

from docpipe.runtime.citation import STOPWORDS, content_words

_PRONOUNS = frozenset("he she it they him them his her hers its their theirs we us our ours i me my mine this these those".split())
_PRONOUN_WORD = re.compile(r"\b(?:" + "|".join(sorted(_PRONOUNS)) + r")\b", re.IGNORECASE)
_VAGUE_HEADS = frozenset(
    "it this that these those there here they he she we i you one all some each such other which what who "
    "another both either neither none many most few several something anything nothing nobody everybody everyone "
    "someone anyone".split()
)
_BAD_PART = re.compile(r"[\"\u201c\u201d\[\]<>|{}]|--|''|\u00e2(?![a-z])|^\W")


def _decap(text: str) -> str:
    """A capital that only starts a line goes ("Important points" -> "important points"; "Maple Leafs" stays)."""
    words = text.split()
    common = len(words) >= 2 and words[0][1:].islower() and words[1].islower()
    return text[:1].lower() + text[1:] if common else text


def _phrase(text: str) -> str:
    """A sentence-initial phrase made fit for the middle of a question ("The rink" -> "the rink")."""
    first, _, rest = text.partition(" ")
    if first in ("The", "A", "An", "Some", "Many", "Most", "All", "Each", "Every", "Any", "Both") or (
        first[:1].isupper() and first[1:].islower() and first.lower() in STOPWORDS
    ):
        return f"{first.lower()} {rest}".strip()
    return text


def _whole_words(topic: str, sentence: str) -> bool:
    """'the co' is no topic of '... the co-operation of a horse'; each part of 'the players and the stones' is in it."""

    def found(phrase: str) -> bool:
        return bool(re.search(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", sentence, re.IGNORECASE))

    return found(topic) or all(found(part) for part in topic.split(" and "))


_REGEX_SUBJECT = re.compile(
    r"^(?P<subj>(?:[A-Za-z][\w'\u2019-]*\s+){0,5}?[A-Za-z][\w'\u2019-]*)\s+(?:is|are|was|were|has|have|had|can|could|"
    r"will|would|may|might|must|should|shall|does|do|did)\b"
)
_PROPER = re.compile(r"(?<=[a-z,;] )(?:[A-Z][\w'\u2019-]+(?:\s+(?:of|de|and|the|for)\s+|\s+)){0,4}[A-Z][\w'\u2019-]+")


_TOPIC_STOP = STOPWORDS | frozenset(
    "above below after before up down out off again also only just even still all such more most less "
    "own same other each every some any much many few well often however thus one two three since "
    "though although unless until whether yet while therefore hence otherwise moreover indeed "
    "general".split()
)
_ADJECTIVES = frozenset(
    "first second third last next same other new old good great little long high low large small big "
    "whole certain main following previous".split()
)
_THERE_IS = re.compile(r"^There (?:is|are|was|were) (?:a |an |no |some |many |several )?((?:[a-z][\w'-]*\s+){0,2}[a-z][\w'-]*)")
_DET_NP = re.compile(r"\b(?:the|a|an)\s+((?:[a-z][\w'-]*\s+){0,3}[a-z][\w'-]*)", re.IGNORECASE)


def _regex_topic(sentence: str) -> str | None:
    """A noun phrase the sentence is about, without a parse: its subject, a proper name, or a 'the ...' phrase."""
    candidates = [_phrase(m["subj"])] if (m := _REGEX_SUBJECT.match(sentence)) else []
    candidates += [m.group() for m in _PROPER.finditer(sentence) if " " in m.group()]  # "General" alone says little
    for m in [*_THERE_IS.finditer(sentence), *_DET_NP.finditer(sentence)]:
        words = []
        for word in m.group(1).split():
            if word.lower() in _TOPIC_STOP or word.endswith("ly"):
                break
            words.append(word)
        if len(words) >= 2 and words[-1].endswith(("s", "ed")) and not words[-1].endswith("ss"):
            words.pop()  # "the curling-rink adjoins": most likely a verb
        if words and words[-1].lower() not in _ADJECTIVES:
            candidates.append(("the " if m.re is _DET_NP else "") + " ".join(words))
    topics = [_clean_topic(c) for c in candidates]
    return _topic_pair([t for t in topics if _good_topic(t) and not _BAD_PART.search(t)])


_VAGUE_NOUNS = frozenset(
    "kind sort type way part thing things lot case fact matter time place end side point order number manner "
    "form pause rest course deal use".split()
)


def _weighty(topic: str) -> bool:
    """Worth asking about: 'the jump', 'Zoladex'; not 'part', 'pause' or 'the kind'."""
    words = topic.split()
    if words[-1].lower() in _VAGUE_NOUNS and len(words) <= 2:
        return False
    return len(words) >= 2 or (words[0][:1].isupper() and len(words[0]) >= 4) or len(words[0]) >= 7


def _clean_topic(topic: str) -> str:
    topic = re.split(r"[,;:(]", topic)[0]
    words = topic.split()
    while words and (words[-1].lower() in STOPWORDS or not re.search(r"\w", words[-1])):
        words.pop()
    return " ".join(words).strip("'\"`“”")


def _good_topic(topic: str) -> bool:
    words = topic.split()
    first = words[0].lower() if words else ""
    return (
        1 <= len(words) <= 8
        and first not in _VAGUE_HEADS
        and (first not in STOPWORDS or first in ("the", "a", "an"))
        and not _PRONOUN_WORD.search(topic)
        and bool(content_words(topic) - _TOPIC_STOP)
        and len(topic) <= 80
        and not re.search(r"[;:!?\u2014]|\.\s", topic)
    )


def _topic_pair(candidates: list[str | None]) -> str | None:
    """The first topic, joined by a second when it is short: 'the players and the stones' asks about one sentence,
    'the players' about every sentence of a chapter."""
    topics = [t for t in candidates if t and _weighty(t)]
    if not topics:
        return None
    first = topics[0]
    second = next((t for t in topics[1:] if t.lower() not in first.lower() and first.lower() not in t.lower()), None)
    return f"{first} and {second}" if second and len(content_words(first)) <= 2 else first
