"""Duplicate pairs are found exactly or nearly, and distinct pairs are left alone."""

from __future__ import annotations

import random
import subprocess
import sys
import unicodedata

from docpipe.qa.dedup import _PUNCT, _key, find_duplicates

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


def test_look_alike_characters_and_compatibility_forms_make_an_exact_duplicate():
    pairs = [
        ("What is the \u201creading room\u201d?", ANSWER),
        ('What is the "reading\u00a0room"?', ANSWER),
        ("WHAT IS THE \uff32EADING ROOM", ANSWER),  # fullwidth R
    ]
    assert find_duplicates(pairs).dropped == {1: (0, "exact"), 2: (0, "exact")}


def test_ascii_shortcut_normalises_as_the_unicode_path():
    # _key skips look-alike folding and NFKC for ASCII text; every ASCII character must come out the same.
    for code in range(128):
        text = f"Ab{chr(code)}cD {chr(code)}e"
        assert _key(text) == " ".join(_PUNCT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def test_empty_and_one_word_questions():
    pairs = [("?", ""), ("", "Some answer."), ("Why?", "Because."), ("why", "Other.")]
    result = find_duplicates(pairs)
    assert result.kept == [0, 2]
    assert result.dropped == {1: (0, "exact"), 3: (2, "exact")}


def test_rewordings_among_many_pairs_are_found_and_unrelated_pairs_kept():
    pairs, source_of = _planted_rewordings(originals=1_000, rewordings=1_000)
    result = find_duplicates(pairs)
    found = [index for index, source in source_of.items() if result.dropped.get(index, (None,))[0] == source]
    assert len(found) / len(source_of) >= 0.9
    assert set(result.dropped) <= set(source_of)  # no original merged into another
    assert {"near question", "near pair"} <= {why for _, why in result.dropped.values()}
    assert find_duplicates(pairs) == result  # the same groups on every run


def _planted_rewordings(originals: int, rewordings: int) -> tuple[list[tuple[str, str]], dict[int, int]]:
    """Distinct pairs over a shared vocabulary, then rewordings of random ones with one question
    word replaced: in a 20-word question (a near question) or a 12-word one (only the pair is near)."""
    rng = random.Random(7)
    vocab = [f"word{i}" for i in range(3_000)]
    pairs = []
    for index in range(originals):
        length = 20 if index % 2 else 12
        question = "What does " + " ".join(rng.choices(vocab, k=length - 3)) + " mean?"
        pairs.append((question, " ".join(rng.choices(vocab, k=20)) + "."))
    source_of = {}
    for _ in range(rewordings):
        source = rng.randrange(originals)
        words = pairs[source][0].split()
        words[rng.randrange(2, len(words) - 1)] = rng.choice(vocab)
        source_of[len(pairs)] = source
        pairs.append((" ".join(words), pairs[source][1]))
    return pairs, source_of


def test_without_numpy_the_module_loads_and_the_call_names_the_extra():
    # curate (and so generate, dataset, dpo) imports this module; only dedup itself needs numpy.
    code = (
        "import sys\nsys.modules['numpy'] = None  # as if not installed\n"
        "from docpipe.qa.dedup import find_duplicates\n"
        "try:\n    find_duplicates([('q', 'a')])\nexcept ImportError as error:\n    print(error)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'docpipe[dataset]'" in out
