"""Duplicate pairs are found exactly or nearly, and distinct pairs are left alone."""

from __future__ import annotations

from docpipe.qa.dedup import find_duplicates

ANSWER = "The reading room opens at nine in the morning on weekdays."


def test_exact_duplicates_ignore_case_punctuation_and_spacing():
    pairs = [
        ("When does the reading room open on weekdays?", ANSWER),
        ("when does the  READING room open on weekdays", ANSWER),
        ("When does the reading room open on weekdays ?", "At nine."),
    ]
    result = find_duplicates(pairs)
    assert result.kept == [0]
    assert result.dropped == {1: (0, "exact"), 2: (0, "exact")}


def test_a_question_asked_again_with_a_word_changed_is_a_near_duplicate():
    pairs = [
        ("At what time does the main reading room of the city archive open on weekdays?", ANSWER),
        ("At what time does the main reading room of the city archive open on workdays?", ANSWER),
    ]
    result = find_duplicates(pairs, threshold=0.7)
    assert result.dropped == {1: (0, "near question")}
    assert result.counts() == {"near question": 1}


def test_distinct_questions_are_kept_even_with_the_same_answer():
    pairs = [
        ("When does the reading room open on weekdays?", ANSWER),
        ("Which room of the archive opens at nine?", ANSWER),
        ("Who may borrow rare books from the archive?", "Only registered researchers may borrow rare books."),
    ]
    assert find_duplicates(pairs).kept == [0, 1, 2]


def test_empty_input():
    assert find_duplicates([]).kept == []
