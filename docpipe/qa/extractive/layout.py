"""Reading a chunk's layout: line kinds, spans, tables, lists, fields, sentences and boilerplate,
without an LLM; and `information_units`, how many facts a chunk holds."""

from __future__ import annotations

import re
from dataclasses import dataclass

from docpipe.runtime.citation import STOPWORDS, locate

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}\s+{_MONTH}(?:,?\s+\d{{4}})?|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?"
    rf"|{_MONTH}\s+\d{{4}}|(?:1[5-9]|20)\d\d(?!\d)s?|\d{{4}}-\d\d-\d\d)\b"
)
_BULLET = re.compile(
    r"^[`'\"]*(?:[-*+>\u2013\u2014]\s+|[\u2022\u25aa\u25cf\u25e6\u2023\uf0b7]\s*|\(?\d{1,3}[.)]\s+|\(?[a-z][.)]\s+|\([A-Z]\)\s+|\([ivxIVX]{1,5}\)\s+)"
)
_ENUMERATOR = re.compile(r"^[`'\"]*(?:\(\w{1,4}\)|\d{1,3}[.)]|[a-z]\)|[IVX]{1,5}\.)\s+")
_FIELD = re.compile(r'^"?(?P<key>[A-Za-z][\w .&/()\'-]{0,38}?)"?\s*:\s+(?P<value>[^{}\[\]]*?[^\W_][^{}\[\]]*?),?$')
_DASH_TERM = re.compile(r"^(?P<term>\S.{0,50}?)\s+[-\u2013\u2014]\s+(?P<desc>\S.{2,})$")
_PAGE = re.compile(r"^(?:page\s*)?[-\u2013(]?\s*\d{1,4}\s*[-\u2013)]?(?:\s*(?:of|/)\s*\d{1,4})?$|^[ivxlc]{1,6}$", re.IGNORECASE)
_URL_ONLY = re.compile(r"^(?:<?(?:https?://|www\.|mailto:)\S+>?|\S+@\S+\.\w+)$")
_CONTENTS_LINE = re.compile(r"^(?P<entry>[^\W\d_][^.]{1,80}?)\s*(?:\.\s?){4,}\s*(?P<page>\d{1,4})$")
_RUNNING_HEAD = re.compile(
    r"\barXiv:\d|(?:\.\s?){4,}\s*\d+$|^\d{1,4}\s+[A-Z][\w.]*(?:\s+[A-Z][\w.]*)?\s+et al\.?$|^(?:©|copyright\b)|all rights reserved",
    re.IGNORECASE,
)
_CODE_START = re.compile(r"^(?:def|class|import|from \S+ import|return|function|var|let|const|public|private|#include|SELECT|<[/!?]?\w)\b")
_CODE_CHARS = frozenset("{}[]<>;=\\$#@~^")
_WORDS = re.compile(r"[^\W_]+(?:['\u2019.-][^\W_]+)*")
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])|;(?=[ \t]*\n)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st no nos fig figs vs etc al inc ltd co corp jr sr e.g i.e cf approx dept est vol pp ed eds gen gov sen rep u.s".split()
)
_MARKUP = re.compile(r"\*\*|__|`+|''|^#+\s*")
# Function words of English and of no other language much: how a sentence shows it is English.
_ENGLISH = frozenset(
    "the of and to is are was were that for with as by this be it from at or an which have has not but they "
    "their his her can will would been these also its more than may other into only who what when there then "
    "should must could about after before over under between through during without within against all any "
    "some such each both our your you he she we them him new first most out up down if because while where how "
    "why very just well does did had".split()
)
# Email header fields, each with the question asked of it (see rules._fields).
_EMAIL_FIELDS = {
    "from": "Who sent {src}?",
    "to": "Who was {src} sent to?",
    "subject": "What is the subject of {src}?",
    "date": "When was {src} sent?",
    "cc": "Who was copied on {src}?",
    "sent": "When was {src} sent?",
}


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
    return (
        sum(len(s.text.split()) >= 3 for s in layout.sentences)
        + sum(len(items) for _, items in layout.lists)
        + rows
        + len(layout.fields)
        + len(layout.contents)
    )


# --- table rows ---------------------------------------------------------------------------------


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
    return not cell or (
        len(cell) <= 80
        and len(cell.split()) <= 10
        and not _numeric(cell)
        and not re.fullmatch(r"[IVXLC]+\.?", cell)
        and not re.search(r"[/\\]|\.\w{2,4}$|^[^\w(]|[,;]$|\.\s", cell)
    )
