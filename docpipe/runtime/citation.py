"""Is a quote really in its source, and where? Does an answer follow from a passage? (The dataset's checks and the eval's.)

Models copy quotes with small damage: curly quotes straightened, a line break turned into a
space, a ligature spelled out. `locate` forgives exactly that (Unicode compatibility forms,
quote and dash variants, whitespace runs, case) and nothing else, and returns the span in the
ORIGINAL source, so that a citation can point into the ingested document's text.
"""

from __future__ import annotations

import re
import unicodedata

# Characters models swap for look-alikes when they copy text.
LOOKALIKES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
    }
)
_WORD = re.compile(r"[^\W_]+")
# Words that carry no content: an answer is not "supported" by sharing them with the quote.
STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there here which who whom whose what when where why how do does did done has have had not no "
    "yes so than then too very can could will would shall should may might must into onto over under about "
    "their they them he she his her we our you your i me my".split()
)


def _normalize_char(char: str) -> str:
    return unicodedata.normalize("NFKC", char.translate(LOOKALIKES)).casefold()


def _normalized_with_map(text: str) -> tuple[str, list[int]]:
    """Normalised text and, for each of its characters, the index of the source character it came from."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        piece = " " if char.isspace() else _normalize_char(char)
        for p in piece:
            if p == " " and (not out or out[-1] == " "):
                continue  # whitespace runs collapse to one space, none at the start
            out.append(p)
            origin.append(index)
    return "".join(out), origin


def normalize(text: str) -> str:
    return _normalized_with_map(text)[0].strip()


def locate(quote: str, source: str) -> tuple[int, int] | None:
    """(start, end) of `quote` in `source` with `source[start:end]` the matching original text, or None."""
    needle = normalize(quote)
    if not needle:
        return None
    haystack, origin = _normalized_with_map(source)
    at = haystack.find(needle)
    if at < 0:
        return None
    return origin[at], origin[at + len(needle) - 1] + 1


def content_words(text: str) -> set[str]:
    """Lower-cased words that carry meaning, crudely stemmed so 'opens' meets 'open'."""
    return {_stem(w) for w in _WORD.findall(normalize(text)) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}


def support(answer: str, quote: str) -> float:
    """Share of the answer's content words that the quote contains (1.0 when the answer has none)."""
    words = content_words(answer)
    return len(words & content_words(quote)) / len(words) if words else 1.0


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word
