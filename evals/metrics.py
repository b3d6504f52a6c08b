"""Per-answer measures of `docpipe eval`, each a small pure function, and `score_answer`, which turns one model's reply
to one question into an `AnswerScore`: how much of the reference it says, whether it abstains, what it cites and
whether that citation holds, and whether it copies the training answer of another question."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from docpipe.config import EvalConfig
from docpipe.contracts import AnswerScore, DocStatus, Document, EvalQuestion
from docpipe.runtime.chat_format import ABSTAIN_ANSWER, parse_source_reference
from docpipe.runtime.citation import content_words, normalize

# The dataset accepts an answer when its quote holds this share of the answer's content words (generate.min_support's
# default); a citation "supports" an answer by the same measure.
MIN_SUPPORT = 0.6
# A citation's support is measured against the best window of this many words of the cited document, stepping by
# half a window: about a paragraph, like the quotes the dataset was checked against. The whole text of a long
# document holds almost any answer's words, so it would prove nothing.
PASSAGE_WORDS = 150
_SOURCE_MARK = "Source: "
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
_ARTICLES = frozenset({"a", "an", "the"})
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Abstentions, matched against the first sentence of an answer after `_plain` (case-folded, contractions expanded,
# punctuation dropped). Conservative on purpose: a sentence that merely mentions the documents is an answer.
_DOCS = r"(?:the |these |your )?(?:provided |given )?documents?"
_ABSTENTIONS = tuple(
    re.compile(pattern)
    for pattern in (
        rf"{_DOCS} (?:do|does) not (?:say|mention|state|specify|answer|cover|contain|include|address|discuss|describe|explain|give|provide)\b.*",
        rf"{_DOCS} (?:say nothing|make no mention|contain no information|have no information|give no information|provide no information)\b.*",
        rf"(?:(?:this|that|it|the answer|the information|this information|that information)(?: is)? )?"
        rf"not (?:mentioned |stated |given |found |covered |provided |specified |included |answered |addressed )?in {_DOCS}",
        rf"(?:there is )?no (?:information|mention) (?:about|of|on) (?:this|that|it) in {_DOCS}",
        rf"i (?:cannot|could not|did not|can not) find (?:this|that|it|the answer|an answer) in {_DOCS}",
    )
)
# A first sentence that turns ("..., but the fee is 5 euros") answers after all.
_HEDGES = re.compile(r"\b(?:but|however|although|though|except)\b|;")


# --- the answer's text -------------------------------------------------------------------------------------------


def answer_body(reply: str) -> str:
    """The reply without its trailing 'Source: <file>, p. <page>' line (the whole reply when it cites nothing)."""
    text = reply.strip()
    if parse_source_reference(text) is None:
        return text
    head, _, last = text.rpartition("\n")
    body = last[: last.find(_SOURCE_MARK)]
    return f"{head}\n{body}".strip() if head else body.strip()


def _unpunctuated(text: str) -> str:
    return "".join(c for c in text if not unicodedata.category(c).startswith(("P", "S")))


def _squad_tokens(text: str) -> list[str]:
    """SQuAD's normalisation: lower case, punctuation and symbols dropped, articles dropped, split on whitespace."""
    return [t for t in _unpunctuated(normalize(text)).split() if t not in _ARTICLES]


def token_f1(answer: str, reference: str) -> float:
    """SQuAD's token F1 of two texts as bags of tokens (1.0 when both are empty, 0.0 when only one is)."""
    predicted, gold = _squad_tokens(answer), _squad_tokens(reference)
    if not predicted or not gold:
        return float(predicted == gold)
    same = sum((Counter(predicted) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _numbers(text: str) -> set[str]:
    """Numbers as written ('1987', '2.5'); a thousands separator is dropped, so '1,000' meets '1000'."""
    return {_THOUSANDS.sub(lambda m: m[0].replace(",", ""), n) for n in _NUMBER.findall(normalize(text))}


def _facts(text: str) -> set[str]:
    # content_words splits '2.5' into '2' and '5': numbers are compared whole instead
    return {w for w in content_words(text) if not w.isdigit()} | _numbers(text)


def key_facts(answer: str, reference: str) -> float:
    """Share of the reference's content words and numbers that the answer contains.

    A reference without content words ('Yes.', 'It is.') is measured by its plain words instead, so that 'No.'
    does not pass for 'Yes.'; an empty reference asks for nothing and gives 1.0.
    """
    facts = _facts(reference)
    if facts:
        return len(facts & _facts(answer)) / len(facts)
    words = set(_squad_tokens(reference))
    return len(words & set(_squad_tokens(answer))) / len(words) if words else 1.0


def _plain(text: str) -> str:
    text = normalize(text).replace("can't", "cannot").replace("won't", "will not").replace("n't", " not")
    text = re.sub(r"\b(that|it|this|there)'s\b", r"\1 is", text)
    return " ".join(_unpunctuated(text).split())


_ABSTAIN_PLAIN = _plain(ABSTAIN_ANSWER)


def abstained(answer: str) -> bool:
    """The answer says the documents do not say: its first sentence is the trained abstention or a close variant
    ('The documents don't say.', 'Not in the documents.', 'The documents do not mention the fee.').

    The first sentence decides: one that turns ('..., but the fee is 5 euros') is an answer, while what follows a
    plain abstention ('The documents do not say. They cover only fees.') is taken as its explanation.
    """
    body = answer_body(answer)
    if not body:
        return False
    first = _SENTENCE_END.split(body, maxsplit=1)[0]
    if _HEDGES.search(normalize(first)):
        return False
    plain = _plain(first)
    return plain == _ABSTAIN_PLAIN or any(p.fullmatch(plain) for p in _ABSTENTIONS)


def expects_abstention(question: EvalQuestion) -> bool:
    """The right reply is an abstention: an out-of-corpus question, or a user question whose reference abstains."""
    return question.set == "out_of_corpus" or abstained(question.reference)


# --- citations ---------------------------------------------------------------------------------------------------


@dataclass
class CorpusDocument:
    """One readable document as the eval sees it: its text and page count (None when its format has no pages)."""

    path: str
    text: str
    pages: int | None
    _passages: list[set[str]] | None = field(default=None, repr=False)

    def passages(self) -> list[set[str]]:
        """Content words of each window of `PASSAGE_WORDS` words, made on first use and kept."""
        if self._passages is None:
            self._passages = _passages(self.text)
        return self._passages


@dataclass
class Corpus:
    """The documents an answer may cite, by relative path (built from documents.jsonl)."""

    documents: dict[str, CorpusDocument]

    @classmethod
    def from_documents(cls, documents: Iterable[Document]) -> Corpus:
        """Every document that ingestion read (ok or partial); a failed or skipped file taught the model nothing."""
        readable = (d for d in documents if d.status in (DocStatus.ok, DocStatus.partial))
        return cls({d.path: CorpusDocument(d.path, d.text, _page_count(d)) for d in readable})


def _page_count(document: Document) -> int | None:
    pages = max([document.pages or 0, *(el.page or 0 for el in document.elements)])
    return pages or None


def _passages(text: str) -> list[set[str]]:
    memo: dict[str, set[str]] = {}  # a document repeats its words: normalise each once
    words = []
    for word in text.split():
        if word not in memo:
            memo[word] = content_words(word)
        words.append(memo[word])
    step = PASSAGE_WORDS // 2
    starts = range(0, max(len(words) - step, 1), step)
    return [set().union(*words[start : start + PASSAGE_WORDS]) for start in starts]


def citation_exists(path: str, page: int | None, corpus: Corpus) -> bool:
    """The cited file is a corpus document and the cited page, when given, one of its pages.

    When the document's page count is unknown (formats without pages) only the file is checked.
    """
    document = corpus.documents.get(path.strip())
    if document is None:
        return False
    return page is None or document.pages is None or 1 <= page <= document.pages


def citation_right_document(path: str, question: EvalQuestion) -> bool | None:
    """The cited file is the one that answers the question (None when the question names no document)."""
    return None if question.path is None else path.strip() == question.path


def citation_supports(body: str, path: str, corpus: Corpus) -> bool:
    """The cited document holds the answer: some passage of it has at least `MIN_SUPPORT` of the answer's content words
    (runtime.citation.support's measure, with the passage's words made once per document)."""
    document = corpus.documents.get(path.strip())
    if document is None:
        return False
    words = content_words(body)
    if not words:
        return True  # as support(): an answer with nothing to back up is not contradicted
    return any(len(words & passage) / len(words) >= MIN_SUPPORT for passage in document.passages())


# --- copying another question's training answer ------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return _WORD.findall(normalize(text))


def _runs(words: list[str], n: int) -> list[tuple[str, ...]]:
    """Each distinct run of n words, in the order of the text (so the first copy found is the same every time)."""
    return list(dict.fromkeys(tuple(words[i : i + n]) for i in range(len(words) - n + 1)))


class TrainingAnswers:
    """The training answers indexed by their runs of n words, built once so thousands of answers are checked fast."""

    def __init__(self, answers: Mapping[str, tuple[str, str]], n: int):
        """`answers`: training pair id -> (question, answer); abstentions are not indexed (every one looks alike)."""
        self.n = n
        self.questions = {pair_id: " ".join(_words(question)) for pair_id, (question, _) in answers.items()}
        self.runs: dict[tuple[str, ...], list[str]] = {}
        for pair_id, (_, answer) in answers.items():
            if not abstained(answer):
                for run in _runs(_words(answer_body(answer)), n):
                    self.runs.setdefault(run, []).append(pair_id)


def regurgitation(
    answer: str, training: TrainingAnswers, *, source_id: str | None = None, question: str | None = None, reference: str | None = None
) -> str | None:
    """Id of a training pair of another question whose answer shares a run of `training.n` words with this answer.

    Not another question: the pair the question was made from (`source_id`), a pair asking the same question, and a
    run the reference answer itself shares (a fact two answers legitimately state alike). An abstention copies nothing.
    """
    if abstained(answer):
        return None
    shared = set(_runs(_words(answer_body(reference)), training.n)) if reference else set()
    asked = " ".join(_words(question)) if question else None
    for run in _runs(_words(answer_body(answer)), training.n):
        if run in shared:
            continue
        for pair_id in training.runs.get(run, ()):
            if pair_id != source_id and training.questions[pair_id] != asked:
                return pair_id
    return None


# --- one answer, scored ------------------------------------------------------------------------------------------


def score_answer(
    question: EvalQuestion, reply: str, corpus: Corpus, cfg: EvalConfig, training: TrainingAnswers | None = None
) -> AnswerScore:
    """Every measure of one reply to one question (the judge's score is left for the judge)."""
    body, reference = answer_body(reply), answer_body(question.reference)
    facts = key_facts(body, reference)
    refused = abstained(reply)
    source = parse_source_reference(reply.strip())
    copied = (
        regurgitation(reply, training, source_id=question.source_id, question=question.question, reference=reference) if training else None
    )
    correct = refused if expects_abstention(question) else (not refused and facts >= cfg.correct_key_facts)
    citation = {}
    if source is not None:
        path, page = source
        citation = {
            "cited_path": path,
            "cited_page": page,
            "citation_exists": citation_exists(path, page, corpus),
            "citation_right_document": citation_right_document(path, question),
            "citation_supports": citation_supports(body, path, corpus),
        }
    return AnswerScore(
        answer=reply,
        f1=token_f1(body, reference),
        key_facts=facts,
        abstained=refused,
        cited=source is not None,
        regurgitated=copied,
        correct=correct,
        **citation,
    )
