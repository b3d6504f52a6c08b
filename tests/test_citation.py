"""Quotes are found where models damage them only cosmetically, and nowhere else."""

from __future__ import annotations

import pytest

from docpipe.runtime.citation import content_words, locate, normalize, support

SOURCE = "The “Reading Room” opens at 9\u00a0a.m.\n\nIt closes\nat 5 p.m. – except on public holidays. Eﬃcient staﬀ help."


@pytest.mark.parametrize(
    "quote",
    [
        'The "Reading Room" opens at 9 a.m.',  # straight quotes, plain space
        "it closes at 5 p.m. - except",  # a line break read as a space, a hyphen for the dash, lower case
        "Efficient staff help.",  # ligatures spelled out
        "  opens   at 9 a.m.  ",  # stray whitespace around and inside
    ],
)
def test_cosmetic_damage_is_forgiven_and_the_span_points_at_the_original(quote):
    span = locate(quote, SOURCE)
    assert span is not None
    start, end = span
    assert normalize(SOURCE[start:end]) == normalize(quote)


def test_span_is_exact_in_the_original_text():
    start, end = locate("closes at 5", SOURCE)
    assert SOURCE[start:end] == "closes\nat 5"


@pytest.mark.parametrize("quote", ["opens at 10 a.m.", "The Reading Room never closes", "", "   "])
def test_changed_or_empty_quotes_are_not_found(quote):
    assert locate(quote, SOURCE) is None


def test_support_counts_content_words_only():
    quote = "The Reading Room opens at 9 a.m. on weekdays."
    assert support("It opens at 9 on weekdays.", quote) == 1.0
    assert support("The archive is closed on Sundays.", quote) < 0.5
    assert "the" not in content_words("The room") and "room" in content_words("The room")
