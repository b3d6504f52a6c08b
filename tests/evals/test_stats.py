"""Intervals, paired comparisons and set scores on data whose answers are known."""

from __future__ import annotations

import pytest

from docpipe.config import EvalConfig
from docpipe.contracts import AnswerScore, EvalQuestion, EvalRecord
from evals.stats import answers_of, compare, estimate, paired_answers, set_scores

CFG = EvalConfig()


def _score(correct: bool, *, key_facts: float | None = None, **extra) -> AnswerScore:
    facts = float(correct) if key_facts is None else key_facts
    extra.setdefault("cited", False)
    return AnswerScore(answer="an answer", f1=facts, key_facts=facts, abstained=False, correct=correct, **extra)


def _scores(pattern: list[bool]) -> dict[str, AnswerScore]:
    return {f"q{i}": _score(c) for i, c in enumerate(pattern)}


# --- estimate ----------------------------------------------------------------------------------------------------


def test_a_constant_sample_has_a_zero_width_interval():
    assert estimate([0.7] * 30, CFG).model_dump() == {"value": 0.7, "low": 0.7, "high": 0.7, "n": 30, "too_small": False}
    # a share all "yes" is not certain: Wilson's interval says how far 25 questions can be trusted
    assert (estimate([True] * 25, CFG).value, round(estimate([True] * 25, CFG).low, 3), estimate([True] * 25, CFG).high) == (
        1.0,
        0.867,
        1.0,
    )


def test_no_values_give_no_estimate():
    assert estimate([], CFG).model_dump() == {"value": None, "low": None, "high": None, "n": 0, "too_small": True}


def test_fewer_values_than_min_questions_are_too_small():
    assert estimate([True, False] * 9, CFG).too_small  # 18 < 20
    assert not estimate([True, False] * 10, CFG).too_small
    assert not estimate([True, False] * 5, EvalConfig(min_questions=10)).too_small


def test_a_share_s_interval_is_near_the_textbook_one_and_seeded():
    values = [True, False] * 50  # p = 0.5, n = 100: the normal interval is 0.5 +- 0.098
    e = estimate(values, CFG)
    assert e.value == 0.5 and 0.38 < e.low < 0.43 and 0.57 < e.high < 0.62
    assert estimate(values, CFG) == e  # the same seed, the same interval
    assert estimate(values, EvalConfig(seed=1)).value == 0.5
    narrower = estimate(values, EvalConfig(confidence=0.8))
    assert e.low < narrower.low < narrower.high < e.high


def test_a_large_sample_is_resampled_in_batches():
    e = estimate([i % 4 == 0 for i in range(10_000)], EvalConfig(bootstrap_samples=1000))
    assert e.value == 0.25 and 0.23 < e.low < 0.25 < e.high < 0.27


# --- compare -----------------------------------------------------------------------------------------------------


def test_a_model_against_itself_differs_by_nothing():
    a = _scores([True, False, True] * 10)
    result = compare(a, dict(a), CFG)
    assert (result.difference.value, result.difference.low, result.difference.high) == (0.0, 0.0, 0.0)
    assert result.p_value is None and result.improvements == [] and result.regressions == []
    assert (result.a, result.b, result.measure) == ("base", "tuned", "correct")


def test_a_clearly_better_model_is_better_with_confidence():
    base = _scores([False] * 40)
    tuned = _scores([True] * 35 + [False] * 5)
    result = compare(base, tuned, CFG)
    assert result.difference.value == pytest.approx(35 / 40)
    assert result.difference.low > 0.7 and result.difference.n == 40
    assert result.p_value < 1e-6
    assert result.improvements == [f"q{i}" for i in range(35)] and result.regressions == []


def test_regressions_and_an_even_trade():
    base = _scores([True] * 10 + [False] * 10)
    tuned = _scores([False] * 10 + [True] * 10)
    result = compare(base, tuned, CFG)
    assert result.difference.value == 0.0 and result.difference.low < 0 < result.difference.high
    assert result.p_value == pytest.approx(1.0)
    assert len(result.improvements) == 10 and result.regressions == [f"q{i}" for i in range(10)]


def test_compare_on_key_facts():
    base = {f"q{i}": _score(False, key_facts=0.2) for i in range(30)}
    tuned = {f"q{i}": _score(False, key_facts=0.2 + 0.01 * i) for i in range(30)}
    result = compare(base, tuned, CFG, measure="key_facts", a_label="tuned", b_label="tuned-q8_0")
    assert result.difference.value == pytest.approx(0.145) and result.difference.low > 0
    assert result.improvements == [] and (result.a, result.b) == ("tuned", "tuned-q8_0")


def test_compare_refuses_unpaired_questions_and_unknown_measures():
    with pytest.raises(ValueError, match="same questions"):
        compare(_scores([True] * 3), _scores([True] * 4), CFG)
    with pytest.raises(ValueError, match="answer"):
        compare(_scores([True]), _scores([True]), CFG, measure="answer")


def test_paired_answers_keeps_the_questions_both_answered():
    records = [
        EvalRecord(
            question=EvalQuestion(id=f"q{i}", set="unseen" if i < 3 else "seen", question="?", reference="r"),
            answers={"base": _score(False), "tuned": _score(True)} if i else {"tuned": _score(True)},
        )
        for i in range(5)
    ]
    assert set(answers_of(records, "tuned")) == {"q0", "q1", "q2", "q3", "q4"}
    assert set(answers_of(records, "tuned", ["unseen"])) == {"q0", "q1", "q2"}
    base, tuned = paired_answers(records, "base", "tuned", ["unseen"])
    assert list(base) == list(tuned) == ["q1", "q2"]


# --- set scores --------------------------------------------------------------------------------------------------


def test_set_scores_count_citation_checks_among_cited_answers_only():
    cited = dict(cited=True, citation_exists=True, citation_supports=False)
    scores = [
        _score(True, **cited, citation_right_document=True),
        _score(True, **cited, citation_right_document=False),
        _score(False, **cited),  # its question names no document
        _score(False, regurgitated="p7"),
    ]
    result = set_scores(scores, CFG)
    assert (result.correct.value, result.correct.n) == (0.5, 4)
    assert (result.cited.value, result.cited.n) == (0.75, 4)
    assert (result.citation_exists.value, result.citation_exists.n) == (1.0, 3)
    assert (result.citation_right_document.value, result.citation_right_document.n) == (0.5, 2)
    assert (result.citation_supports.value, result.citation_supports.n) == (0.0, 3)
    assert (result.regurgitated.value, result.abstained.value) == (0.25, 0.0)
    assert result.correct.too_small
