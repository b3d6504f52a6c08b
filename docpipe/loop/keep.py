"""The keep rule: a change is kept only when it wins a paired test against the best so far.

Both runs answered the same examples; each example's score is paired. The change wins when
Wilcoxon's signed-rank test (two-sided, Pratt's handling of ties) gives p below the threshold AND
the percentile-bootstrap interval of the mean difference lies above zero. One number being higher
is not enough: on a few dozen questions, noise moves it by several points (AIDE keeps whichever
run scores highest; this is the test it lacks).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel
from scipy.stats import wilcoxon


class Decision(BaseModel):
    kept: bool
    n: int  # examples both runs answered
    mean_difference: float | None  # new - best
    low: float | None
    high: float | None
    p_value: float | None
    why: str


def paired_decision(
    best: Mapping[str, float],
    new: Mapping[str, float],
    *,
    p_threshold: float = 0.1,
    confidence: float = 0.95,
    samples: int = 2000,
    min_examples: int = 10,
    seed: int = 0,
) -> Decision:
    """Keep `new` over `best` (example id -> score, higher is better) when it wins the paired test."""
    ids = sorted(set(best) & set(new))
    if len(ids) < min_examples:
        return Decision(
            kept=False,
            n=len(ids),
            mean_difference=None,
            low=None,
            high=None,
            p_value=None,
            why=f"only {len(ids)} examples in common with the best run (fewer than {min_examples}): not comparable",
        )
    diff = np.array([new[i] - best[i] for i in ids], dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    low, high = (float(q) for q in np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))
    p = _wilcoxon(diff)
    mean = float(diff.mean())
    wins = p is not None and p < p_threshold and low > 0
    if wins:
        why = f"better by {mean:+.3f} ({low:+.3f} to {high:+.3f}), Wilcoxon p={p:.3g} < {p_threshold:g}"
    elif p is None:
        why = "no example scored differently"
    else:
        why = f"not better with confidence: {mean:+.3f} ({low:+.3f} to {high:+.3f}), Wilcoxon p={p:.3g}"
    return Decision(kept=wins, n=len(ids), mean_difference=mean, low=low, high=high, p_value=p, why=why)


def _wilcoxon(diff: np.ndarray) -> float | None:
    if not np.any(diff):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that a handful of examples is few for its approximation
        p = float(wilcoxon(diff, zero_method="pratt", alternative="two-sided").pvalue)
    return p if np.isfinite(p) else None
