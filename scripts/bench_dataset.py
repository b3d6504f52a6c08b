#!/usr/bin/env python
"""Benchmark dataset making. Near-duplicate detection over synthetic Q&A pairs (docpipe's
MinHash LSH against the exact-hash dedup a user would otherwise write, in one run), and with
--documents, generation throughput: pairs per minute from the extractive generator and from
the packaged local model (the gateway's overhead over raw llama-cpp-python is measured by
scripts/bench_gateway.py).

    .venv/bin/python scripts/bench_dataset.py [--pairs 100000] [--documents OUT/documents.jsonl --chunks 12] [--out bench-results/dataset.json]

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


def generation(documents: Path, sample: int) -> dict:
    """Pairs per minute written and accepted: the extractive generator on every chunk, and the
    packaged local model (through the gateway, cache off) on the first `sample` chunks with content."""
    from docpipe.config import GenerateConfig, LLMConfig
    from docpipe.contracts import Document, QAPair
    from docpipe.llm import open_llm
    from docpipe.qa.agents import ChunkTask, QAWriter
    from docpipe.qa.curate import Draft, Source, check
    from docpipe.qa.generate import make_chunks, pairs_wanted
    from docpipe.store import iter_jsonl

    cfg = GenerateConfig()
    docs = {d.doc_id: d for d in (Document.model_validate(r) for r in iter_jsonl(documents))}
    chunks = [c for c in make_chunks(list(docs.values()), cfg) if pairs_wanted(c, cfg) > 0]

    def measure(agent: QAWriter, subset) -> dict:
        written = accepted = calls = 0
        tiers: dict[str, int] = {}
        started = time.perf_counter()
        for chunk in subset:
            result = agent.run(ChunkTask(chunk, pairs_wanted(chunk, cfg)))
            calls += result.calls
            tiers[result.tier.value] = tiers.get(result.tier.value, 0) + 1
            source = Source(chunk, docs[chunk.doc_id])
            for p in result.value.pairs:
                written += 1
                accepted += isinstance(check(Draft.of(p, chunk.id, "", ""), source, cfg), QAPair)
        minutes = (time.perf_counter() - started) / 60
        return {
            "chunks": len(subset),
            "seconds": round(minutes * 60, 2),
            "model_calls": calls,
            "tiers": tiers,
            "pairs_written": written,
            "pairs_passing_checks": accepted,
            "written_per_min": round(written / minutes, 1),
            "passing_per_min": round(accepted / minutes, 1),
        }

    result = {"extractive_all_chunks": measure(QAWriter(None), chunks)}
    llm = open_llm(LLMConfig(), cache_dir=None)
    if llm is not None:
        result["local_model"] = {"model": llm.model, **measure(QAWriter(llm), chunks[:sample])}
        usage = llm.usage().get("QAWriter", {})
        seconds = result["local_model"]["seconds"] or 1
        result["local_model"]["completion_tokens_per_s"] = round(usage.get("completion_tokens", 0) / seconds, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "dataset.json")
    parser.add_argument("--documents", type=Path, help="An ingested documents.jsonl: also measure generation on its chunks.")
    parser.add_argument("--chunks", type=int, default=12, help="Chunks the local model writes pairs for (it is slow).")
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
        "exact_hash_baseline": {
            "seconds": round(baseline_s, 3),
            "found": len(baseline),
            "recall": round(len(baseline & planted) / len(planted), 4),
        },
        "docpipe_minhash_lsh": {
            "seconds": round(docpipe_s, 3),
            "found": len(dropped),
            "recall": round(len(dropped & planted) / len(planted), 4),
            "false_positives": len(dropped - planted),
            "precision": round(precision(pairs, found.dropped, planted), 4),
            "by_kind": found.counts(),
        },
    }
    if args.documents:
        report["generation"] = generation(args.documents, args.chunks)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
