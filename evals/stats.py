"""The numbers behind every figure `docpipe eval` shows: a mean with its percentile-bootstrap interval, a paired
comparison of two models on the same questions (bootstrap interval of the difference, Wilcoxon's p), and one model's
scores on one question set."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

try:
    import numpy as np
    from scipy.stats import binomtest, wilcoxon
except ImportError as exc:
    raise ImportError("docpipe eval needs numpy and scipy: pip install 'docpipe[eval]'") from exc

from docpipe.config import EvalConfig
from docpipe.contracts import AnswerScore, Estimate, EvalRecord, PairedComparison, SetScores

MEASURES = ("correct", "f1", "key_facts", "abstained", "cited")  # the AnswerScore fields two models can be compared on
_CELLS_PER_BATCH = 4_000_000  # bootstrap resamples are drawn in batches of at most this many indices (32 MB)


def estimate(values: Sequence[float | bool], cfg: EvalConfig, *, share: bool | None = None) -> Estimate:
    """The mean of `values` (bools count as 0/1) with its percentile-bootstrap interval at `cfg.confidence`.

    `cfg.bootstrap_samples` resamples, seeded with `cfg.seed`, so the same values give the same interval every time.
    `too_small` when there are fewer than `cfg.min_questions` values; value, low and high are None when there are none.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return Estimate(value=None, low=None, high=None, n=0, too_small=True)
    value = float(x[0]) if np.all(x == x[0]) else float(x.mean())  # a constant's mean, exactly: 0.7, not 0.6999999999999997
    # A share (yes/no per question) gets Wilson's score interval: a bootstrap of 20 "no"s says 0-0%, which overstates
    # what 20 questions can show (Wilson: 0-16%). Other means (F1, key facts) get the percentile bootstrap.
    # `share=None`: decided from the values; a difference of two shares is a mean, never a share.
    share = np.isin(x, (0.0, 1.0)).all() if share is None else share
    low, high = _wilson_interval(x, cfg) if share else _bootstrap_interval(x, cfg)
    # a rounding error must not put the value a hair outside its own interval
    return Estimate(value=value, low=min(low, value), high=max(high, value), n=int(x.size), too_small=x.size < cfg.min_questions)


def _wilson_interval(x: np.ndarray, cfg: EvalConfig) -> tuple[float, float]:
    interval = binomtest(int(x.sum()), int(x.size)).proportion_ci(confidence_level=cfg.confidence, method="wilson")
    return float(interval.low), float(interval.high)


def _bootstrap_interval(x: np.ndarray, cfg: EvalConfig) -> tuple[float, float]:
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])  # every resample is the sample itself
    rng = np.random.default_rng(cfg.seed)
    means = np.empty(cfg.bootstrap_samples)
    rows = max(1, _CELLS_PER_BATCH // x.size)
    for start in range(0, cfg.bootstrap_samples, rows):
        stop = min(start + rows, cfg.bootstrap_samples)
        means[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    tail = (1 - cfg.confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def compare(
    a: Mapping[str, AnswerScore],
    b: Mapping[str, AnswerScore],
    cfg: EvalConfig,
    *,
    a_label: str = "base",
    b_label: str = "tuned",
    measure: str = "correct",
    question_set: str | None = None,
) -> PairedComparison:
    """Model B against model A on the same questions (question id -> score): the mean difference B - A of `measure`
    with a paired-bootstrap interval (questions resampled, each keeping both answers), Wilcoxon's signed-rank p
    (two-sided; Pratt's handling of zero differences, so the many ties of a pass/fail measure count), and the
    questions B gets right and A does not (improvements) and the reverse (regressions).

    Raises:
        ValueError: the two models did not answer the same questions, or `measure` is not one of `MEASURES`.
    """
    if measure not in MEASURES:
        raise ValueError(f"cannot compare on {measure!r}: choose one of {', '.join(MEASURES)}")
    if set(a) != set(b):
        raise ValueError(
            f"a paired comparison needs the same questions: {len(set(a) ^ set(b))} are answered by only one of {a_label}, {b_label}"
        )
    ids = list(a)
    differences = np.array([float(getattr(b[i], measure)) - float(getattr(a[i], measure)) for i in ids])
    return PairedComparison(
        a=a_label,
        b=b_label,
        measure=measure,
        set=question_set,
        difference=estimate(differences, cfg, share=False),
        p_value=_wilcoxon_p(differences),
        improvements=[i for i in ids if b[i].correct and not a[i].correct],
        regressions=[i for i in ids if a[i].correct and not b[i].correct],
    )


def _wilcoxon_p(differences: np.ndarray) -> float | None:
    if not np.any(differences):
        return None  # the test is undefined when nothing differs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that a handful of questions is too few for its approximation
        p = float(wilcoxon(differences, zero_method="pratt", alternative="two-sided").pvalue)
    return p if np.isfinite(p) else None


def answers_of(records: Iterable[EvalRecord], label: str, sets: Iterable[str] | None = None) -> dict[str, AnswerScore]:
    """Question id -> the answer of model `label`, for the questions of `sets` (all when None) that it answered."""
    wanted = None if sets is None else set(sets)
    return {r.question.id: r.answers[label] for r in records if label in r.answers and (wanted is None or r.question.set in wanted)}


def paired_answers(
    records: Iterable[EvalRecord], a_label: str, b_label: str, sets: Iterable[str] | None = None
) -> tuple[dict[str, AnswerScore], dict[str, AnswerScore]]:
    """The answers of two models to the questions of `sets` that both answered, ready for `compare`."""
    records = list(records)
    a, b = answers_of(records, a_label, sets), answers_of(records, b_label, sets)
    both = [i for i in a if i in b]
    return {i: a[i] for i in both}, {i: b[i] for i in both}


def set_scores(scores: Sequence[AnswerScore], cfg: EvalConfig) -> SetScores:
    """One model on one question set. The citation checks count only the answers that cite (and, for the right
    document, whose question names one); `regurgitated` is the share of answers that copy another question's."""
    cited = [s for s in scores if s.cited]
    return SetScores(
        correct=estimate([s.correct for s in scores], cfg),
        f1=estimate([s.f1 for s in scores], cfg),
        key_facts=estimate([s.key_facts for s in scores], cfg),
        cited=estimate([s.cited for s in scores], cfg),
        citation_exists=estimate([s.citation_exists for s in cited if s.citation_exists is not None], cfg),
        citation_right_document=estimate([s.citation_right_document for s in cited if s.citation_right_document is not None], cfg),
        citation_supports=estimate([s.citation_supports for s in cited if s.citation_supports is not None], cfg),
        abstained=estimate([s.abstained for s in scores], cfg),
        regurgitated=estimate([s.regurgitated is not None for s in scores], cfg),
    )
