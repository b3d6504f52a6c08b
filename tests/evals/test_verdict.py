"""The verdict on planted models: each is built answer by answer, so the right verdict is known."""

from __future__ import annotations

import re

import pytest

from docpipe.config import EvalConfig
from docpipe.contracts import AnswerScore, Estimate, EvalQuestion, EvalRecord
from docpipe.runtime.chat_format import ABSTAIN_ANSWER
from evals.verdict import format_difference, format_share, judge

CFG = EvalConfig()


def _answer(correct: bool, *, right: bool | None = True, exists: bool = True, regurgitated: str | None = None) -> AnswerScore:
    """An answer that cites page 1 of a file: the question's own (right) or another (right=False)."""
    path = "guide.pdf" if exists else "made-up.pdf"
    return AnswerScore(
        answer=f"An answer.\n\nSource: {path}, p. 1",
        f1=float(correct),
        key_facts=float(correct),
        abstained=False,
        cited=True,
        cited_path=path,
        cited_page=1,
        citation_exists=exists,
        citation_right_document=right,
        citation_supports=exists and correct,
        regurgitated=regurgitated,
        correct=correct,
    )


def _abstention(correct: bool) -> AnswerScore:
    return AnswerScore(answer=ABSTAIN_ANSWER, f1=0.0, key_facts=0.0, abstained=True, cited=False, correct=correct)


def _answerable(right: int, wrong: int) -> list[AnswerScore]:
    return [_answer(True)] * right + [_answer(False)] * wrong


def _records(**sets: tuple[list[AnswerScore], list[AnswerScore] | None]) -> list[EvalRecord]:
    """set name -> (the tuned model's answers, the base model's answers to the same questions or None)."""
    records = []
    for name, (tuned, base) in sets.items():
        out_of_corpus = name == "out_of_corpus"
        for i, answer in enumerate(tuned):
            question = EvalQuestion(
                id=f"{name}-{i}",
                set=name,
                question=f"Question {i}?",
                reference=ABSTAIN_ANSWER if out_of_corpus else "The fee is 5 euros.",
                path=None if out_of_corpus else "guide.pdf",
            )
            answers = {"tuned": answer} | ({"base": base[i]} if base else {})
            records.append(EvalRecord(question=question, answers=answers))
    return records


def _good_model(base: bool = True) -> list[EvalRecord]:
    def weak(n: int) -> list[AnswerScore] | None:
        return _answerable(5, n - 5) if base else None

    return _records(
        seen=(_answerable(30, 0), weak(30)),
        rephrased=(_answerable(27, 3), weak(30)),
        unseen=(_answerable(26, 4), weak(30)),
        out_of_corpus=([_abstention(True)] * 18 + [_answer(False, right=None)] * 2, [_abstention(True)] * 2 + [_answer(False)] * 18),
    )


def _assert_every_figure_has_its_n(judgement):
    for line in [*judgement.reasons, *judgement.trust]:
        if re.search(r"\d%|points", line):
            assert "n=" in line, line


def test_a_good_model_is_ok():
    judgement = judge(_good_model(), CFG)
    assert judgement.verdict == "ok"
    assert judgement.reasons[0].startswith("Every check passed. On questions in new words it answers 88% (")
    assert (
        judgement.trust[0].startswith("It answers 88% (") and "n=60)" in judgement.trust[0] and "over the base model" in judgement.trust[0]
    )
    assert any(line.startswith("It says when the documents do not answer: it abstained on 90% (") for line in judgement.trust)
    _assert_every_figure_has_its_n(judgement)


def test_a_model_that_memorised_a_tiny_set_is_overfit():
    records = _records(
        seen=(_answerable(10, 0), _answerable(0, 10)),  # the whole tiny training set, word for word
        rephrased=(_answerable(3, 17), _answerable(0, 20)),
        unseen=(_answerable(2, 8), _answerable(0, 10)),
        out_of_corpus=([_abstention(True)] * 10, [_abstention(True)] * 10),
    )
    judgement = judge(records, CFG)
    assert judgement.verdict == "overfit"
    assert "100% (72-100%, n=10, too few to be sure) of the questions it was trained on" in judgement.reasons[0]
    assert "15% (" in judgement.reasons[0] and "a gap of 85 points" in judgement.reasons[0]
    _assert_every_figure_has_its_n(judgement)


def test_a_model_that_copies_other_answers_is_overfit():
    records = _good_model()
    for record in records[:40]:  # 40 of 110 answers copy another question's
        record.answers["tuned"] = record.answers["tuned"].model_copy(update={"regurgitated": "p-other"})
    judgement = judge(records, CFG)
    assert judgement.verdict == "overfit"
    assert judgement.reasons[0].startswith("36% (") and "copy the training answer of another question" in judgement.reasons[0]


@pytest.mark.parametrize("which", ["weak", "strong"])
def test_the_base_model_against_itself_is_never_better(which):
    good = _good_model()
    label = "base" if which == "weak" else "tuned"
    records = [r.model_copy(update={"answers": {"base": r.answers[label], "tuned": r.answers[label]}}) for r in good]
    judgement = judge(records, CFG)
    assert judgement.verdict not in ("ok",)
    if which == "strong":  # a model as good as "the good model" that is its own base has learned nothing
        assert judgement.verdict == "undertrained"
        assert "not measurably better than the base model" in judgement.reasons[0]
        assert "the difference is 0 points (0 to 0, n=60)" in judgement.reasons[0]
    assert any("not measurably better than the base model" in line for line in judgement.reasons)
    _assert_every_figure_has_its_n(judgement)


def test_a_model_worse_than_its_base_is_undertrained():
    good = _good_model()
    records = [r.model_copy(update={"answers": {"base": r.answers["tuned"], "tuned": r.answers["base"]}}) for r in good]
    records = [r for r in records if r.question.set != "out_of_corpus"]
    judgement = judge(records, CFG)
    assert judgement.verdict == "undertrained" and "worse than the base model" in judgement.reasons[0]


def test_a_model_that_always_abstains_is_over_refusing():
    records = _records(
        seen=([_abstention(False)] * 30, _answerable(5, 25)),
        rephrased=([_abstention(False)] * 30, _answerable(5, 25)),
        unseen=([_abstention(False)] * 30, _answerable(5, 25)),
        out_of_corpus=([_abstention(True)] * 20, [_abstention(True)] * 20),
    )
    judgement = judge(records, CFG)
    assert judgement.verdict == "over-refusing"
    assert judgement.reasons[0].startswith("It says the documents do not say on 100% (96-100%, n=90) of the questions they do answer")
    _assert_every_figure_has_its_n(judgement)


def test_too_few_questions_are_insufficient_data():
    records = _records(seen=(_answerable(30, 0), None), rephrased=(_answerable(5, 0), None), unseen=(_answerable(4, 1), None))
    judgement = judge(records, CFG)
    assert judgement.verdict == "insufficient-data"
    assert judgement.reasons == [
        "Only 10 questions ask about your documents in words the model was not trained on (5 rephrased, 5 unseen): "
        "at least 20 are needed to say how good it is."
    ]
    assert "too few to be sure" in judgement.trust[0]
    assert judge([], CFG).verdict == "insufficient-data"


def test_a_model_inventing_answers_and_files_is_ungrounded():
    records = _good_model()
    invented = [_answer(False, right=None, exists=False)] * 20  # an answer to every out-of-corpus question, citing made-up.pdf
    records = [r for r in records if r.question.set != "out_of_corpus"] + _records(out_of_corpus=(invented, [_abstention(True)] * 20))
    judgement = judge(records, CFG)
    assert judgement.verdict == "ungrounded"
    assert judgement.reasons[0].startswith("It says the documents do not say on only 0% (0-16%, n=20) of the questions they do not answer")
    assert "'made-up.pdf, p. 1'" in judgement.reasons[-1] and judgement.reasons[-1].startswith("18% (")  # 20 of 110 citations
    assert any(line.startswith("It does not say when the documents do not answer") for line in judgement.trust)
    _assert_every_figure_has_its_n(judgement)


def test_citing_the_wrong_documents_is_ungrounded():
    records = _good_model()
    for record in records[:90:2]:  # half the answers to answerable questions name another file
        record.answers["tuned"] = record.answers["tuned"].model_copy(update={"citation_right_document": False})
    judgement = judge(records, CFG)
    assert judgement.verdict == "ungrounded"
    assert judgement.reasons[0].startswith("Only 50% (") and "n=90)" in judgement.reasons[0]


def test_without_the_base_model_the_reasons_say_it_was_not_compared():
    judgement = judge(_good_model(base=False), CFG)
    assert judgement.verdict == "ok"
    assert "It was not compared with the base model, so whether training helped is not known." in judgement.reasons
    assert judgement.trust[0].endswith("it was not compared with the base model.")


def test_numbers_in_words():
    assert format_share(Estimate(value=0.62, low=0.54, high=0.7, n=120)) == "62% (54-70%, n=120)"
    assert format_share(Estimate(value=0.5, low=0.2, high=0.8, n=8, too_small=True)) == "50% (20-80%, n=8, too few to be sure)"
    assert format_share(Estimate(value=None, low=None, high=None, n=0, too_small=True)) == "no questions (n=0)"
    assert format_difference(Estimate(value=0.2, low=0.12, high=0.28, n=120)) == "+20 points (+12 to +28, n=120)"
    assert format_difference(Estimate(value=0.0, low=-0.05, high=0.05, n=60)) == "0 points (-5 to +5, n=60)"
