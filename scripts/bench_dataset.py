#!/usr/bin/env python
"""Benchmark dataset curation. For now: near-duplicate detection over synthetic Q&A pairs,
docpipe's MinHash LSH against the exact-hash dedup a user would otherwise write, in one run.

    .venv/bin/python scripts/bench_dataset.py [--pairs 100000] [--out bench-results/dataset.json]

The synthetic pairs plant three kinds of repeats: exact copies, copies with case/punctuation
changed, and questions with one word swapped. Recall = planted repeats found.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from docpipe.qa.dedup import find_duplicates

ROOT = Path(__file__).resolve().parent.parent


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
    found = find_duplicates(pairs)
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
            "by_kind": found.counts(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
