"""The verdict of `docpipe eval`: one word for what the tuned model is, the reasons with their figures, and what it
can be trusted for, in sentences for the report's first screen. Every figure a user reads carries its interval and n.

The rules, with the thresholds of `EvalConfig`, checked in this order; the first that holds is the verdict, and every
rule that holds gives its reason (the verdict's first):

1. insufficient-data: the rephrased and unseen sets together hold fewer than `min_questions` questions (nothing else
   is judged: every figure would be noise);
2. over-refusing: the tuned model abstains on more than `max_over_refusal` of the questions its documents answer;
3. overfit: its seen-set accuracy exceeds its rephrased-set accuracy by more than `overfit_gap`, or more than
   `max_regurgitation` of its answers copy the training answer of another question;
4. undertrained: on rephrased + unseen questions, neither the paired interval of the accuracy difference (tuned -
   base) nor that of the key-facts difference lies above zero; skipped, with a reason, when the base model was not asked;
5. ungrounded: fewer than `min_citation_validity` of its cited answers name the document that answers the question,
   or it cites nothing at all, or it abstains on fewer than `min_abstention` of the out-of-corpus questions;
6. ok.

Citations of a file (or page) that is not in the corpus are always reported, whatever the verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from docpipe.config import EvalConfig
from docpipe.contracts import AnswerScore, Estimate, EvalQuestion, EvalRecord, PairedComparison, Verdict
from evals.metrics import expects_abstention
from evals.stats import compare, estimate, paired_answers

NEW_WORDS = ("rephrased", "unseen")  # questions the model was not trained on word for word: the fair test


class Judgement(NamedTuple):
    verdict: Verdict
    reasons: list[str]
    trust: list[str]


@dataclass
class _Figures:
    """What the rules read, all about the tuned model unless named otherwise."""

    new: Estimate  # accuracy on rephrased + unseen
    rephrased: Estimate
    unseen: Estimate
    seen: Estimate
    user: Estimate
    refusal: Estimate  # abstentions on answerable questions
    regurgitation: Estimate  # answers copying another question's training answer, every set
    cited: Estimate  # answers to answerable questions, not abstentions, that cite
    right_document: Estimate  # cited answers naming the question's document
    supports: Estimate  # cited answers whose document holds them
    abstention: Estimate  # abstentions on questions the documents do not answer
    invalid: Estimate  # cited answers naming a file or page not in the corpus
    invalid_files: Counter[str]
    versus_base: PairedComparison | None  # accuracy on rephrased + unseen, tuned - base
    versus_base_facts: PairedComparison | None  # the same for key facts
    base: Estimate | None  # the base model's accuracy on the questions of versus_base
    tuned: Estimate | None  # the tuned model's accuracy on the same questions


def judge(records: Sequence[EvalRecord], cfg: EvalConfig, *, tuned: str = "tuned", base: str = "base") -> Judgement:
    """The verdict on model `tuned` from every question's answers (eval_questions.jsonl), against model `base`.

    Returns:
        (verdict, reasons, trust): the rule that decided (see the module's docstring), one plain line per rule that
        held, and what the model can and cannot be trusted for.
    """
    f = _measure(records, cfg, tuned, base)
    trust = _trust(f, cfg)
    insufficient = _insufficient(f, cfg)
    if insufficient:
        return Judgement("insufficient-data", [insufficient], trust)
    rules: list[tuple[Verdict, Callable[[_Figures, EvalConfig], list[str]]]] = [
        ("over-refusing", _over_refusing),
        ("overfit", _overfit),
        ("undertrained", _undertrained),
        ("ungrounded", _ungrounded),
    ]
    fired = [(verdict, reasons) for verdict, rule in rules if (reasons := rule(f, cfg))]
    verdict: Verdict = fired[0][0] if fired else "ok"
    reasons = [line for _, lines in fired for line in lines] or _passed(f)
    if f.versus_base is None:
        reasons.append("It was not compared with the base model, so whether training helped is not known.")
    if f.invalid_files:
        reasons.append(_invalid_citations(f))
    return Judgement(verdict, reasons, trust)


# --- the figures -------------------------------------------------------------------------------------------------


def _measure(records: Sequence[EvalRecord], cfg: EvalConfig, tuned: str, base: str) -> _Figures:
    answers = [(r.question, r.answers[tuned]) for r in records if tuned in r.answers]

    def share(value: Callable[[AnswerScore], object], keep: Callable[[EvalQuestion, AnswerScore], bool]) -> Estimate:
        return estimate([bool(value(s)) for q, s in answers if keep(q, s)], cfg)

    def in_sets(*names: str) -> Callable[[EvalQuestion, AnswerScore], bool]:
        return lambda q, s: q.set in names

    def answerable(q: EvalQuestion, s: AnswerScore) -> bool:
        return not expects_abstention(q)

    return _Figures(
        new=share(lambda s: s.correct, in_sets(*NEW_WORDS)),
        rephrased=share(lambda s: s.correct, in_sets("rephrased")),
        unseen=share(lambda s: s.correct, in_sets("unseen")),
        seen=share(lambda s: s.correct, in_sets("seen")),
        user=share(lambda s: s.correct, in_sets("user")),
        refusal=share(lambda s: s.abstained, answerable),
        regurgitation=share(lambda s: s.regurgitated is not None, lambda q, s: True),
        cited=share(lambda s: s.cited, lambda q, s: answerable(q, s) and not s.abstained),
        right_document=share(lambda s: s.citation_right_document, lambda q, s: s.citation_right_document is not None),
        supports=share(lambda s: s.citation_supports, lambda q, s: s.citation_supports is not None),
        abstention=share(lambda s: s.abstained, lambda q, s: expects_abstention(q)),
        invalid=share(lambda s: not s.citation_exists, lambda q, s: s.citation_exists is not None),
        invalid_files=Counter(_cited(s) for _, s in answers if s.citation_exists is False),
        **_versus_base(records, cfg, tuned, base),
    )


def _versus_base(records: Sequence[EvalRecord], cfg: EvalConfig, tuned: str, base: str) -> dict:
    a, b = paired_answers(records, base, tuned, NEW_WORDS)
    if not a:
        return {"versus_base": None, "versus_base_facts": None, "base": None, "tuned": None}
    return {
        "versus_base": compare(a, b, cfg, a_label=base, b_label=tuned, measure="correct"),
        "versus_base_facts": compare(a, b, cfg, a_label=base, b_label=tuned, measure="key_facts"),
        "base": estimate([s.correct for s in a.values()], cfg),
        "tuned": estimate([s.correct for s in b.values()], cfg),
    }


def _cited(score: AnswerScore) -> str:
    return score.cited_path if score.cited_page is None else f"{score.cited_path}, p. {score.cited_page}"


# --- the rules ---------------------------------------------------------------------------------------------------


def _insufficient(f: _Figures, cfg: EvalConfig) -> str | None:
    if f.new.n >= cfg.min_questions:
        return None
    return (
        f"Only {f.new.n} questions ask about your documents in words the model was not trained on "
        f"({f.rephrased.n} rephrased, {f.unseen.n} unseen): at least {cfg.min_questions} are needed to say how good it is."
    )


def _over_refusing(f: _Figures, cfg: EvalConfig) -> list[str]:
    if f.refusal.value is None or f.refusal.value <= cfg.max_over_refusal:
        return []
    return [
        f"It says the documents do not say on {format_share(f.refusal)} of the questions they do answer, "
        f"more than the {_pct(cfg.max_over_refusal)}% allowed."
    ]


def _overfit(f: _Figures, cfg: EvalConfig) -> list[str]:
    reasons = []
    if f.seen.value is not None and f.rephrased.value is not None and f.seen.value - f.rephrased.value > cfg.overfit_gap:
        reasons.append(
            f"It answers {format_share(f.seen)} of the questions it was trained on, but only {format_share(f.rephrased)} "
            f"of the same facts asked in new words: a gap of {_pct(f.seen.value - f.rephrased.value)} points, more than "
            f"{_pct(cfg.overfit_gap)}; it learned the wordings, not the facts."
        )
    if f.regurgitation.value is not None and f.regurgitation.value > cfg.max_regurgitation:
        reasons.append(
            f"{_capital(format_share(f.regurgitation))} of its answers copy the training answer of another question, "
            f"more than the {_pct(cfg.max_regurgitation)}% allowed."
        )
    return reasons


def _undertrained(f: _Figures, cfg: EvalConfig) -> list[str]:
    if f.versus_base is None or f.versus_base_facts is None or f.base is None or f.tuned is None:
        return []  # judge() says that it was not compared
    if any(c.difference.low is not None and c.difference.low > 0 for c in (f.versus_base, f.versus_base_facts)):
        return []
    accuracy = f.versus_base.difference
    how = "worse than" if accuracy.high is not None and accuracy.high < 0 else "not measurably better than"
    return [
        f"On questions in new words it is {how} the base model: it answers {format_share(f.tuned)}, the base model "
        f"{format_share(f.base)}; the difference is {format_difference(accuracy)}{_p(f.versus_base)}, and in key facts "
        f"{format_difference(f.versus_base_facts.difference)}."
    ]


def _ungrounded(f: _Figures, cfg: EvalConfig) -> list[str]:
    reasons = []
    if f.right_document.value is not None and f.right_document.value < cfg.min_citation_validity:
        reasons.append(
            f"Only {format_share(f.right_document)} of its cited answers name the document that answers the question, "
            f"below the {_pct(cfg.min_citation_validity)}% needed."
        )
    if f.cited.value == 0:
        reasons.append(f"It cites no source for any of its {f.cited.n} answers to questions its documents answer.")
    if f.abstention.value is not None and f.abstention.value < cfg.min_abstention:
        reasons.append(
            f"It says the documents do not say on only {format_share(f.abstention)} of the questions they do not answer, "
            f"below the {_pct(cfg.min_abstention)}% needed: it invents answers to the rest."
        )
    return reasons


def _passed(f: _Figures) -> list[str]:
    if f.versus_base is None or f.base is None or f.tuned is None:
        return ["Every check passed."]
    return [
        f"Every check passed. On questions in new words it answers {format_share(f.tuned)}, the base model "
        f"{format_share(f.base)}: {format_difference(f.versus_base.difference)}{_p(f.versus_base)}."
    ]


def _invalid_citations(f: _Figures) -> str:
    examples = ", ".join(f"'{name}'" for name, _ in f.invalid_files.most_common(3))
    return f"{_capital(format_share(f.invalid))} of its cited answers name a file or page that is not in your documents (e.g. {examples})."


# --- what to trust it for ----------------------------------------------------------------------------------------


def _trust(f: _Figures, cfg: EvalConfig) -> list[str]:
    lines = [_trust_answers(f)]
    if f.seen.n:
        lines.append(f"On the questions it was trained on, asked as trained, it answers {format_share(f.seen)} correctly.")
    if f.user.n:
        lines.append(f"On your own questions it answers {format_share(f.user)} correctly.")
    lines.append(_trust_abstention(f, cfg))
    if f.refusal.n:
        lines.append(f"It wrongly says the documents do not say on {format_share(f.refusal)} of the questions they do answer.")
    lines.extend(_trust_citations(f))
    return lines


def _trust_answers(f: _Figures) -> str:
    if not f.new.n:
        return "It was not asked questions about your documents in new words, so how often it is right is not known."
    answers = f"It answers {format_share(f.new)} of questions about your documents asked in new words correctly"
    if f.versus_base is None or f.base is None:
        return f"{answers}; it was not compared with the base model."
    difference = f.versus_base.difference
    if difference.low is not None and difference.low > 0:
        return f"{answers}: {format_difference(difference)} over the base model, which answers {format_share(f.base)}."
    return f"{answers}, not measurably better than the base model, which answers {format_share(f.base)}."


def _trust_abstention(f: _Figures, cfg: EvalConfig) -> str:
    if f.abstention.value is None:
        return "It was not asked questions the documents do not answer, so whether it invents answers is not known."
    if f.abstention.value >= cfg.min_abstention:
        return f"It says when the documents do not answer: it abstained on {format_share(f.abstention)} of such questions."
    return f"It does not say when the documents do not answer: it abstained on only {format_share(f.abstention)} of such questions."


def _trust_citations(f: _Figures) -> list[str]:
    lines = []
    if f.right_document.n:
        lines.append(f"The source it cites is the right document for {format_share(f.right_document)} of its cited answers.")
    if f.supports.n:
        lines.append(f"The document it cites holds what it says in {format_share(f.supports)} of its cited answers.")
    if f.invalid_files:
        lines.append(f"Check any source it names: {format_share(f.invalid)} of its citations point to no file or page of your documents.")
    return lines


# --- numbers in words --------------------------------------------------------------------------------------------


def format_share(e: Estimate) -> str:
    """'62% (54-70%, n=120)'; a sample under eval.min_questions says it is too small; none at all: 'no questions (n=0)'."""
    if e.value is None or e.low is None or e.high is None:
        return "no questions (n=0)"
    small = ", too few to be sure" if e.too_small else ""
    return f"{_pct(e.value)}% ({_pct(e.low)}-{_pct(e.high)}%, n={e.n}{small})"


def format_difference(e: Estimate) -> str:
    """A difference of two shares in percentage points: '+20 points (12 to 28, n=120)'."""
    if e.value is None or e.low is None or e.high is None:
        return "no questions in common (n=0)"
    small = ", too few to be sure" if e.too_small else ""
    return f"{_points(e.value)} points ({_points(e.low)} to {_points(e.high)}, n={e.n}{small})"


def _p(comparison: PairedComparison) -> str:
    return "" if comparison.p_value is None else f", Wilcoxon p={comparison.p_value:.2g}"


def _pct(share: float) -> str:
    return str(round(100 * share))


def _points(share: float) -> str:
    points = round(100 * share)
    return f"{points:+d}" if points else "0"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
