#!/usr/bin/env python
"""Benchmark dataset curation. For now: near-duplicate detection over synthetic Q&A pairs,
docpipe's MinHash LSH against the exact-hash dedup a user would otherwise write, in one run.

    .venv/bin/python scripts/bench_dataset.py [--pairs 100000] [--out bench-results/dataset.json]

The synthetic pairs plant three kinds of repeats: exact copies, copies with case/punctuation
changed, and questions with one word swapped. Recall = planted repeats found; precision =
share of dropped pairs that are planted repeats or truly near their kept pair (same words, or
exact Jaccard similarity of question bigrams or question + answer trigrams >= the threshold).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

from docpipe.qa.dedup import find_duplicates

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 0.8  # find_duplicates' default


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[tuple[str, str]], set[int]]:
    """`n` pairs, about 10 % of them planted repeats of an earlier pair; returns (pairs, planted)."""
    rng = random.Random(seed)
    vocab = [f"term{i}" for i in range(20_000)]
    pairs: list[tuple[str, str]] = []
    planted: set[int] = set()
    while len(pairs) < n:
        if pairs and rng.random() < 0.1:
            question, answer = pairs[rng.randrange(len(pairs))]
            words = question.split()
            kind = rng.randrange(3)
            if kind == 1:
                question = question.upper().replace("?", " ?")
            elif kind == 2:
                words[rng.randrange(1, len(words) - 1)] = rng.choice(vocab)
                question = " ".join(words)
            planted.add(len(pairs))
        else:
            question = "What does " + " ".join(rng.choice(vocab) for _ in range(12)) + " mean?"
            answer = " ".join(rng.choice(vocab) for _ in range(20)) + "."
        pairs.append((question, answer))
    return pairs, planted


def exact_baseline(pairs: list[tuple[str, str]]) -> set[int]:
    seen: set[tuple[str, str]] = set()
    dropped = set()
    for index, pair in enumerate(pairs):
        (dropped.add(index) if pair in seen else seen.add(pair))
    return dropped


def precision(pairs: list[tuple[str, str]], dropped: dict[int, tuple[int, str]], planted: set[int]) -> float:
    """Share of `dropped` that are planted repeats or near their kept pair, checked exactly and
    independently of docpipe's normalisation and hashing."""
    if not dropped:
        return 1.0
    correct = sum(index in planted or _near(pairs[index], pairs[kept]) for index, (kept, _) in dropped.items())
    return correct / len(dropped)


def _near(first: tuple[str, str], second: tuple[str, str]) -> bool:
    def shingles(words: list[str], n: int) -> set[tuple[str, ...]]:
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)} or {tuple(words)}

    def jaccard(a: set, b: set) -> float:
        return len(a & b) / len(a | b)

    (q1, a1), (q2, a2) = ([re.findall(r"\w+", text.lower()) for text in pair] for pair in (first, second))
    return q1 == q2 or max(jaccard(shingles(q1, 2), shingles(q2, 2)), jaccard(shingles(q1 + a1, 3), shingles(q2 + a2, 3))) >= THRESHOLD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "dataset.json")
    args = parser.parse_args()
    pairs, planted = synthetic_pairs(args.pairs)
    started = time.perf_counter()
    baseline = exact_baseline(pairs)
    baseline_s = time.perf_counter() - started
    started = time.perf_counter()
    found = find_duplicates(pairs, threshold=THRESHOLD)
    docpipe_s = time.perf_counter() - started
    dropped = set(found.dropped)
    report = {
        "pairs": len(pairs),
        "planted_repeats": len(planted),
        "exact_hash_baseline": {"seconds": round(baseline_s, 3), "found": len(baseline), "recall": round(len(baseline & planted) / len(planted), 4)},
        "docpipe_minhash_lsh": {
            "seconds": round(docpipe_s, 3),
            "found": len(dropped),
            "recall": round(len(dropped & planted) / len(planted), 4),
            "false_positives": len(dropped - planted),
            "precision": round(precision(pairs, found.dropped, planted), 4),
            "by_kind": found.counts(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
