"""The question rules: definitions, table rows, lists, fields, contents, headings, labels, numbers and
fallbacks, each turning the chunk's layout into scored candidate pairs that quote their evidence."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import Field

from docpipe.contracts import Chunk, QADraft
from docpipe.qa.extractive.layout import (
    _DASH_TERM,
    _DATE,
    _EMAIL_FIELDS,
    _URL_ONLY,
    _cells,
    _clean,
    _english,
    _header_rows,
    _heading_name,
    _Layout,
    _Span,
    _title_like,
    _words,
)
from docpipe.qa.extractive.topics import (
    _BAD_PART,
    _PRONOUNS,
    _VAGUE_HEADS,
    _decap,
    _good_topic,
    _phrase,
    _regex_topic,
    _whole_words,
)
from docpipe.runtime.citation import normalize

# Base score of each rule: the more structure a rule reads, the surer its question is.
RULE_SCORES = {
    "definition": 1.0,
    "table_row": 0.9,
    "field": 0.85,
    "list": 0.85,
    "number": 0.8,
    "svo": 0.75,
    "heading": 0.7,
    "label": 0.5,
    "sentence": 0.3,
    "fallback": 0.1,
}


class RuleDraft(QADraft):
    """A pair one rule made; its quote is a verbatim substring of chunk.text, the evidence for the answer."""

    kind: Annotated[str, Field(description="The rule that made it (a key of RULE_SCORES).")]


@dataclass(frozen=True)
class _Candidate:
    score: float
    draft: RuleDraft


def _source(chunk: Chunk) -> str:
    heading = _heading_name(chunk.section)
    if heading and len(heading) <= 60:
        return f'the section "{heading}"'
    name = PurePosixPath(chunk.path.split("!/")[-1]).name.replace('"', "'")
    kind = "email" if name.lower().endswith((".eml", ".msg")) else "document"
    return f'the {kind} "{name}"'


def _draft(kind: str, question: str, answer: str, quote: str, bonus: float = 0.0) -> _Candidate:
    question = " ".join(question.split())
    question = question[:1].upper() + question[1:]
    return _Candidate(RULE_SCORES[kind] + bonus, RuleDraft(question=question, answer=" ".join(answer.split()), quote=quote, kind=kind))


_DEFINITION = re.compile(
    r"^(?P<term>[^,;:()\"]{2,60}?)(?:\s*\([^)]{1,80}\))?,?\s+(?P<cop>is|are|was|were|means|mean|refers to|refer to|is defined as|"
    r"are defined as|stands for|denotes|is called|is known as)\s+(?P<rest>.{3,})$"
)
_DEFINITE = re.compile(r"^(?:a|an|the|one of|any|each|part of|used to|when|where|how|what|to)\b", re.IGNORECASE)
_PERSON_NOUNS = re.compile(
    r"\b(?:born|footballer|player|politician|writer|author|actor|actress|singer|scientist|president|"
    r"minister|professor|engineer|artist|poet|king|queen|leader|founder|director|editor|physician|nurse|"
    r"lawyer|officer|general|chairman|ceo|composer|painter|philosopher)\b",
    re.IGNORECASE,
)


def _definitions(sentences: list[_Span]) -> list[_Candidate]:
    out = []
    for s in sentences:
        m = _DEFINITION.match(s.text)
        if not m or not _english(s.text):
            continue
        term, cop, rest = m["term"].strip(), m["cop"], m["rest"]
        words = term.split()
        if len(words) > 7 or words[0].lower() in _VAGUE_HEADS or words[0].lower() in _PRONOUNS or not re.search(r"[^\W\d_]{2,}", term):
            continue
        if cop in ("is", "are", "was", "were") and not _DEFINITE.match(rest):
            continue  # "The balance is unsteady": a description, not a definition
        term = _decap(_phrase(term))
        if cop in ("is", "are", "was", "were"):
            person = all(w[:1].isupper() for w in words) and 2 <= len(words) <= 4 and _PERSON_NOUNS.search(rest)
            question = f"{'Who' if person else 'What'} {cop} {term}?"
        elif cop.startswith(("mean", "refer", "stand", "denote")):
            verb = {
                "means": "mean",
                "refers to": "refer to",
                "refer to": "refer to",
                "mean": "mean",
                "stands for": "stand for",
                "denotes": "denote",
            }[cop]
            question = f"What {'do' if cop in ('mean', 'refer to') else 'does'} {term} {verb}?"
        else:
            question = f"What {'are' if cop.startswith('are') else 'is'} {term}?"
        out.append(_draft("definition", question, s.text, s.quote))
    return out


def _dash_terms(layout: _Layout) -> list[_Candidate]:
    """'example-10k.html - A 10-K SEC filing', 'lobules – where milk is produced': a term and its gloss."""
    out = []
    spans = [item for _, items in layout.lists for item in items] + [s for s in layout.sentences if len(s.text) <= 200]
    for s in spans:
        m = _DASH_TERM.match(s.text)
        if m and len(m["term"].split()) <= 5 and len(m["desc"].split()) >= 2 and m["term"].split()[0].lower() not in _VAGUE_HEADS:
            term = _decap(_phrase(m["term"]))
            out.append(_draft("definition", f"What {'are' if _plural(term) else 'is'} {term}?", s.text, s.quote, bonus=-0.05))
    return out


def _plural(term: str) -> bool:
    last = term.split()[-1].lower()
    return last.endswith("s") and not last.endswith(("ss", "us", "is", "'s")) and term[:2].lower() not in ("a ", "an")


def _column_names(header: list[list[str]], width: int) -> list[str]:
    """Column names from the last header row, footnote marks dropped; a spanning row above adds its group:
    "Impairment of intangible assets (January–June 2023)"."""
    rows = [row + [""] * (width - len(row)) for row in header]
    names = []
    for col, cell in enumerate(rows[-1]):
        name = re.sub(r"^(?:the|a|an)\s+|\s*(?:\([a-z0-9]\)|\[\d+\]|\*+)$", "", cell, flags=re.IGNORECASE).rstrip(".:")
        group = (
            next((row[c] for row in rows[-2::-1] for c in sorted(range(1, width), key=lambda c: abs(c - col)) if row[c]), "")
            if name and col
            else ""
        )  # the nearest group cell: merged cells land left, right or centre
        name = f"{name} ({group})" if group else name
        names.append(name if 1 <= len(name) <= 80 and not _BAD_PART.search(name) else "")
    return names


def _tables(layout: _Layout, chunk: Chunk, text: str) -> list[_Candidate]:
    out = []
    for rows in layout.tables:
        cells = [_cells(r.text) for r in rows]
        continued = bool(chunk.section) and layout.heading is None and rows[0].start < 5
        header = _header_rows(cells, continued)
        if not header:
            continue
        names = _column_names(header, max(len(c) for c in cells))
        title = _table_title(layout, rows[0], text)
        for number, (row, span) in enumerate(list(zip(cells, rows))[len(header) :]):
            key_col = next((i for i, c in enumerate(row) if c), None)
            if (
                key_col is None
                or not re.search(r"[^\W\d_]", row[key_col])
                or len(row[key_col]) > 60
                or re.search(r"[{}\[\]<>|]", row[key_col])
            ):
                continue
            columns = [i for i, c in enumerate(row) if c and i != key_col and i < len(names) and names[i] and c != "\u2014"]
            for rank, col in enumerate(columns[number % len(columns) :] + columns[: number % len(columns)] if columns else []):
                question, answers = _row_question(names[col], row[key_col], row[col], title)
                for answer in answers:
                    out.append(_draft("table_row", question, answer, span.quote, bonus=-0.05 * rank - 0.01 * number))
    return out


def _table_title(layout: _Layout, first_row: _Span, text: str) -> str | None:
    before = text[: first_row.start].rstrip().rsplit("\n", 1)[-1].strip()
    if before and "|" not in before and _title_like(before) and len(before) <= 50:
        return " ".join(before.split())
    if layout.heading is not None and len(layout.heading.text) <= 50:
        return layout.heading.text
    return None


def _row_question(column: str, key: str, value: str, title: str | None) -> tuple[str, list[str]]:
    """The question for one cell, and its answers from the fullest down to the bare value (the first supported wins)."""
    where = f' in the "{title}" table' if title and title.lower() != column.lower() else ""
    short = [f"{key}: {value}", value]
    if key.lower() in ("total", "totals", "sum", "overall", "grand total"):
        return f"What is the total {column}{where}?", [f"The total {column} is {value}.", value]
    if re.fullmatch(r"\d[\d,]*", value) and re.fullmatch(r"[\w ]{1,30}[^su]s", column) and len(column.split()) <= 3:
        return f"How many {column} does {key} have{where}?", [f"{key} has {value} {column}.", *short]
    if _DATE.fullmatch(column) or re.fullmatch(r"\S+[\u2013-]\S+ \d{4}|(?:FY|Q\d)\s?\d{2,4}", column):  # a period heads the column
        return f"What is the value of {key} for {column}{where}?", [f"The value of {key} for {column} is {value}.", *short]
    return f"What is the {column} of {key}{where}?", [f"The {column} of {key} is {value}.", *short]


def _lists(layout: _Layout, source: str, chunk: Chunk, text: str) -> list[_Candidate]:
    out = []
    for intro, items in layout.lists:
        shown = items[:10]
        quote_start = intro.start if intro is not None and intro.end <= shown[0].start else shown[0].start
        quote = text[quote_start : shown[-1].end]
        answer = "; ".join(i.text.rstrip(".;,") for i in shown) + "."
        if intro is None and layout.heading is None:
            # A list in the middle of a section: its first item tells it from the section's other lists.
            first = " ".join(shown[0].text.split()[:6]).rstrip(".;,:")
            if len(shown) >= 2 and not _BAD_PART.search(first):
                rest = "; ".join(i.text.rstrip(".;,") for i in shown[1:]) + "."
                under = f'under "{_heading_name(chunk.section)}"' if _heading_name(chunk.section) else f"in {source}"
                out.append(_draft("list", f'Which items follow "{first}" in the list {under}?', rest, quote))
            continue
        for question in _list_questions(None if intro is layout.heading else intro, source, chunk):
            out.append(_draft("list", question, answer, quote))
    return out


_INTRO_VERB = re.compile(
    r"^(?P<subj>.+?)\s+(?P<verb>contains?|includes?|has|have|lists?|covers?|provides?|offers?|requires?|"
    r"supports?|comprises?|consists? of|involves?|features?)\s+(?:the following|these|several|some|a few|"
    r"following|many|\w+ main|\d+)?\s*(?P<noun>[\w -]{0,40}?)\s*:$",
    re.IGNORECASE,
)


def _list_questions(intro: _Span | None, source: str, chunk: Chunk) -> list[str]:
    heading = _heading_name(chunk.section)
    under = f'under "{heading}"' if heading else f"in {source}"
    if intro is None:
        return [f"What items are listed {under}?"]
    text = intro.text.rstrip(":").strip()
    m = _INTRO_VERB.match(intro.text)
    if m and m["subj"].split()[0].lower() not in _PRONOUNS | _VAGUE_HEADS and len(m["subj"].split()) <= 8:
        verb = m["verb"].lower()
        base = {"has": "have", "consists of": "consist of"}.get(verb, verb[:-1] if verb.endswith("s") and not verb.endswith("ss") else verb)
        noun = m["noun"].strip() or "items"
        return [f"Which {noun} {'does' if verb != base else 'do'} {_phrase(m['subj'])} {base}?"]
    words = text.split()
    if 1 <= len(words) <= 6 and not any(w.lower() in _PRONOUNS | {"is", "are", "here"} for w in words):
        return [f"What are the {_decap(text)} listed {under}?"]
    return [f'What items are listed after "{text}" {under}?' if len(text) <= 80 else f"What items are listed {under}?"]


def _fields(layout: _Layout, source: str, text: str) -> list[_Candidate]:
    out = []
    for key, value, span, record in layout.fields:
        if _meaningless(value):
            continue
        name = key.replace("_", " ").strip()
        template = _EMAIL_FIELDS.get(name.lower()) if source.startswith("the email") else None
        anchor = _anchor(layout, key, record) if re.fullmatch(r"[a-z][\w-]*", key) else None
        if template:
            question = template.format(src=source)
        elif anchor:  # a data record: name the entry by another of its fields, or every entry asks the same
            anchor_key, anchor_value, anchor_span = anchor
            question = f'What is the {name} of the entry whose {anchor_key.replace("_", " ")} is "{anchor_value}" in {source}?'
            span = _Span(
                min(span.start, anchor_span.start),
                max(span.end, anchor_span.end),
                "",
                text[min(span.start, anchor_span.start) : max(span.end, anchor_span.end)],
            )
        elif re.search(r"\d", name) or (name.isupper() and len(name) >= 2) or sum(w[:1].isupper() for w in name.split()) >= 2:
            question = f"What is {name}?"  # "Code 600", "GSFC": a name of its own
        else:
            question = f"What is the {name if name.isupper() else name.lower()} given in {source}?"
        out.append(_draft("field", question, f"{name}: {value}", span.quote, bonus=-0.1 if "_" in key else 0.0))
    return out


def _meaningless(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f-]{12,}|true|false|null|none|[\d.]+", value.lower()) or _URL_ONLY.match(value))


def _anchor(layout: _Layout, key: str, record: int) -> tuple[str, str, _Span] | None:
    """The field of the same record that tells it apart best: a text of a few words ("text": "News Around NOAA")."""
    siblings = [
        (k, v, sp)
        for k, v, sp, r in layout.fields
        if r == record
        and k != key
        and not _meaningless(v)
        and re.search(r"[^\W\d_]{3,}", v)
        and len(v) <= 60
        and '"' not in v
        and (k.lower() in ("text", "title", "name", "label", "heading", "caption") or len(v.split()) >= 3)
    ]
    return max(siblings, key=lambda f: (f[0].lower() in ("text", "title", "name"), len(f[1].split())), default=None)


def _contents(layout: _Layout, source: str) -> list[_Candidate]:
    return [
        _draft("field", f'On which page does "{entry}" start in {source}?', f"{entry}: page {page}", span.quote, bonus=-0.2)
        for entry, page, span in layout.contents
    ]


def _heading_field(layout: _Layout, chunk: Chunk, text: str, source: str) -> list[_Candidate]:
    """'capital' over 'Paris': a heading over a value of a few words is a field named by the heading."""
    body = [line for line in layout.lines if line.start >= layout.heading.end] if layout.heading else []
    if not body or len(layout.lines) > 4 or layout.fields or layout.tables or layout.contents:
        return []
    value = "; ".join(line.text for line in body)
    if len(value.split()) > 8:
        return []
    key = layout.heading.text
    if len(chunk.section) >= 2 and re.fullmatch(r"[a-z_-]+", key):
        key = f"{chunk.section[-2]} {key}"  # 'country' / 'name' -> 'country name'
    key = key.replace("_", " ").replace('"', "'")
    quote = text[layout.heading.start : body[-1].end]
    return [_draft("field", f"What is the {key} given in {source}?", f"{key}: {value}", quote)]


def _heading_rule(layout: _Layout, chunk: Chunk, topics: dict[_Span, str]) -> list[_Candidate]:
    if layout.heading is None or not layout.sentences:
        return []
    heading = _heading_name(chunk.section)
    first = layout.sentences[0]
    if heading is None or first.start < layout.heading.end or len(first.text.split()) < 5 or not _english(first.text):
        return []
    topic = topics.get(first)
    if topic and normalize(topic) not in normalize(heading) and _whole_words(topic, first.text):
        question = f'What does the section "{heading}" say about {topic}?'
    else:
        question = f'What is the section "{heading}" about?'
    return [_draft("heading", question, first.text, first.quote)]


def _labels(layout: _Layout, source: str) -> list[_Candidate]:
    return [
        _draft("label", f'What is written under "{label.text}" in {source}?', first.text, first.quote)
        for label, first in layout.labels
        if label.text != (layout.heading.text if layout.heading else None)
    ]


# The topic in the middle: a question differs from its neighbours by more than its last words (see qa.dedup).
_ABOUT = (
    "What is said about {topic} in {source}?",
    "What information about {topic} does {source} give?",
    "What can be learned about {topic} from {source}?",
)


def _fallbacks(layout: _Layout, source: str, topics: dict[_Span, str]) -> list[_Candidate]:
    out = []
    for s in _answerable(layout.sentences):
        english = _english(s.text)
        if english and not _prose(s.text):
            continue
        topic = topics.get(s) or (_regex_topic(s.text) if english else None)
        if topic and _whole_words(topic, s.text):
            template = _ABOUT[zlib.crc32(s.text.encode()) % len(_ABOUT)]  # one wording would be learnt as a tic
            out.append(_draft("sentence", template.format(source=source, topic=topic), s.text, s.quote))
        elif not english and len(s.text.split()) >= 6:  # no topic can be told apart in a language we do not read
            opening = " ".join(w.strip("\"'\u201c\u201d,;:") for w in s.text.split()[:3]).strip()
            out.append(_draft("fallback", f'What comes after the words "{opening}" in {source}?', s.text, s.quote))
    return out


def _prose(sentence: str) -> bool:
    """A statement worth asking about: not a reference list entry, a URL, or a line of dialogue."""
    words = _words(sentence)
    lower = sum(w[:1].islower() for w in words)
    if re.search(r"https?\s*:|www\.|\.com\b|\bpp?\.\s*\d", sentence) or len(words) >= 5 and lower / len(words) < 0.4:
        return False
    return not (re.search(r"[\"\u201c\u201d]", sentence) and re.search(r"\b(?:I|me|my)\b", sentence))


def _last_resort(layout: _Layout, source: str) -> list[_Candidate]:
    """For a chunk no rule could ask about: what its first lines say."""
    lines = [_clip(line) for line in layout.lines if len(_words(line.text)) >= 2]
    out = []
    for i, line in enumerate(lines[:3]):
        opening = " ".join(w.strip("\"'\u201c\u201d,;:|") for w in line.text.split()[:3]).strip()
        question = f'What comes after the words "{opening}" in {source}?' if len(line.text.split()) >= 5 else f"What does {source} say?"
        out.append(_draft("fallback", question, line.text, line.quote, bonus=-0.01 * i))
    return out


def _answerable(sentences: list[_Span]) -> list[_Span]:
    """Sentences that make a reasonable answer: some words, not a fragment cut from the sentence before
    (lower-case start); a sentence running on for a page is cut at a clause boundary."""
    return [_clip(s) for s in sentences if len(s.text.split()) >= 3 and not s.text[:1].islower()]


def _clip(span: _Span, max_words: int = 60) -> _Span:
    if len(span.text.split()) <= max_words and len(span.text) <= 600:
        return span
    cuts = [
        m.end()
        for m in re.finditer(r"[,;:](?=\s)|\s(?=and |but |or |which |where )", span.quote)
        if 12 <= len(span.quote[: m.end()].split()) <= max_words and m.end() <= 600
    ]
    end = cuts[-1] if cuts else len(" ".join(span.quote[:600].split(" ")[:-1]))
    raw = span.quote[:end].rstrip(" ,;:")
    return _Span(span.start, span.start + len(raw), _clean(raw), raw)


_REGEX_WHEN = re.compile(
    rf"^(?P<subj>(?:The |A |An )?[A-Z][\w'\u2019-]*(?: [\w'\u2019-]+){{0,5}}?) (?P<aux>was|were) "
    rf"(?P<verb>\w+ed|born|built|made|held|founded|written|begun|won|sold|taken|given|shown|chosen) "
    rf"(?:in|on|during) (?P<date>{_DATE.pattern})"
)
_REGEX_HOW_MANY = re.compile(
    r"^(?:There (?P<be>was|were|are|is) (?:about |around |approximately |over |nearly |more than |some )?"
    r"(?P<num>\d[\d,.]*|two|three|four|five|six|seven|eight|nine|ten) (?P<noun>[a-z]+(?: of [a-z]+)?))"
)


def _regex_numbers(sentences: list[_Span], source: str) -> list[_Candidate]:
    out = []
    for s in sentences:
        if m := _REGEX_WHEN.match(s.text):
            if _good_topic(m["subj"]):
                out.append(_draft("number", f"When {m['aux']} {_phrase(m['subj'])} {m['verb']}?", s.text, s.quote))
        elif m := _REGEX_HOW_MANY.match(s.text):
            out.append(_draft("number", f"How many {m['noun']} {m['be']} there, according to {source}?", s.text, s.quote))
    return out
