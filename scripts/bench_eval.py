#!/usr/bin/env python
"""Benchmark answering evaluation questions: llama.cpp on an F16 GGUF made on the fly against transformers
(float32, the reference), on the same questions, greedy, with the training system prompt, on the CPU.

    .venv/bin/python scripts/bench_eval.py [--dataset OUT/dataset] [--questions 100] [--max-tokens 128] [--threads N] [--out bench-results/eval.json] [--quick]

The model is the packaged SmolLM2-135M-Instruct (the default base) as `docpipe eval` asks the base: one GGUF
written with `evals.answering.make_gguf` (timed once, reused after), and the same folder in transformers. The
questions are a seeded sample of the dataset's training questions (default dataset: made from ../shared/corpus
as scripts/bench_train.py makes it). transformers is first timed at batch sizes 1, 4 and 8 on a few questions,
then answers all of them at the fastest. Reported per engine: seconds per 100 questions, generated tokens/s,
and whether the two engines' answers are identical. Goal: 100 questions in < 60 s through llama.cpp on 2 cores.
--quick runs a tiny random model on a tiny dataset, to smoke-test the script in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
GOAL_S = 60.0  # per 100 questions through llama.cpp
BATCH_SIZES = (1, 4, 8)


def questions_and_system(dataset: Path, count: int, seed: int) -> tuple[list[str], str]:
    """A seeded sample of the training questions, and the system prompt training used (the first record's)."""
    from docpipe.contracts import TrainingRecord
    from docpipe.store import read_records

    records = read_records(dataset / "train.jsonl", TrainingRecord)
    first = records[0].messages[0]
    picked = random.Random(seed).sample(records, min(count, len(records)))
    return [r.question for r in picked], first.content if first.role == "system" else ""


def bench_llama_cpp(gguf: Path, questions: list[str], system: str, max_tokens: int, threads: int) -> tuple[dict, list]:
    from evals.answering import LlamaCppAnswerer, answer_questions

    tick = time.perf_counter()
    answerer = LlamaCppAnswerer(gguf, threads=threads)
    load_s = time.perf_counter() - tick
    try:
        tick = time.perf_counter()
        answers = answer_questions(answerer, questions, system=system, max_tokens=max_tokens, progress=_dots)
        seconds = time.perf_counter() - tick
    finally:
        answerer.close()
    return {"load_s": round(load_s, 2), **_figures(answers, seconds)}, answers


def bench_transformers(base: Path, questions: list[str], system: str, max_tokens: int, threads: int, sweep: int) -> tuple[dict, list]:
    import torch

    from evals.answering import TransformersAnswerer, answer_questions

    torch.set_num_threads(threads)
    tick = time.perf_counter()
    answerer = TransformersAnswerer(base)
    load_s = time.perf_counter() - tick
    batches = {}
    for size in BATCH_SIZES:
        answerer.batch_size = size
        tick = time.perf_counter()
        sample = answer_questions(answerer, questions[:sweep], system=system, max_tokens=max_tokens, progress=_dots)
        batches[size] = _figures(sample, time.perf_counter() - tick)
        print(f" batch {size}: {batches[size]['seconds_per_100_questions']} s/100 questions", flush=True)
    best = min(batches, key=lambda size: batches[size]["seconds"])
    answerer.batch_size = best
    tick = time.perf_counter()
    answers = answer_questions(answerer, questions, system=system, max_tokens=max_tokens, progress=_dots)
    seconds = time.perf_counter() - tick
    answerer.close()
    sweep_report = {str(size): {k: f[k] for k in ("seconds_per_100_questions", "tokens_per_s")} for size, f in batches.items()}
    return {
        "load_s": round(load_s, 2),
        "batch_size": best,
        "batch_sweep": {"questions": sweep, **sweep_report},
        **_figures(answers, seconds),
    }, answers


def compare(questions: list[str], fast: list, reference: list) -> dict:
    """Are the engines' answers identical, and where do the others part?"""
    same_text = [a.text == b.text for a, b in zip(fast, reference)]
    differ = []
    for question, a, b in zip(questions, fast, reference):
        if a.tokens != b.tokens:
            at = next((i for i, (x, y) in enumerate(zip(a.tokens, b.tokens)) if x != y), min(len(a.tokens), len(b.tokens)))
            differ.append({"question": question, "first_different_token": at, "llama_cpp": a.text[:200], "transformers": b.text[:200]})
    return {
        "identical": all(same_text) and not differ,
        "identical_texts": sum(same_text),
        "identical_tokens": len(questions) - len(differ),
        "questions": len(questions),
        "differences": differ[:5],
    }


def _figures(answers: list, seconds: float) -> dict:
    tokens = sum(len(a.tokens) for a in answers)
    return {
        "questions": len(answers),
        "seconds": round(seconds, 2),
        "seconds_per_100_questions": round(seconds * 100 / max(1, len(answers)), 1),
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else None,
        "finished_turns": sum(a.finished for a in answers),
    }


def _dots(done: int, total: int) -> None:
    if done == total or done % 10 == 0:
        print(f"  {done}/{total}", flush=True)


def _machine(threads: int) -> dict:
    return {
        "cores": os.cpu_count(),
        "threads": threads,
        "load_avg_1m": os.getloadavg()[0],
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "transformers", "peft", "llama_cpp_python", "gguf")},
    }


def _inputs(args, scratch: Path) -> tuple[Path, Path | None, Path]:
    """(base folder, the GGUF it came from or None, dataset folder)."""
    from docpipe.runtime import pretrained

    if args.quick:
        from tests.trainers.tiny_model import build_tiny_model, tiny_dataset

        return build_tiny_model(scratch / "model", init_std=0.3), None, args.dataset or tiny_dataset(scratch / "dataset", pairs=12)
    from bench_train import corpus_dataset

    dataset = args.dataset or corpus_dataset(args.cache / "corpus-out")
    base = pretrained.resolve(args.base_model, args.cache).path  # the packaged GGUF converted once, cached
    return base, pretrained.source_gguf(base, args.cache), dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="A `docpipe generate` dataset/ folder (default: made from ../shared/corpus).")
    parser.add_argument("--base-model", default="smollm2-135m-instruct")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench-results" / ".cache")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--sweep-questions", type=int, default=16, help="Questions each transformers batch size is timed on.")
    parser.add_argument("--max-tokens", type=int, default=128, help="The longest answer (eval.max_answer_tokens).")
    parser.add_argument("--threads", type=int, help="Threads for both engines (default: the cores not busy).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Default bench-results/eval.json (eval-quick.json with --quick).")
    parser.add_argument("--quick", action="store_true", help="Tiny random model, 12 questions: a smoke test.")
    args = parser.parse_args()

    from docpipe.runtime import hardware
    from evals.answering import make_gguf

    threads = args.threads or hardware.choose_threads(None, hardware.probe())
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as scratch:
        base, source, dataset = _inputs(args, Path(scratch))
        questions, system = questions_and_system(dataset, 12 if args.quick else args.questions, args.seed)
        gguf = (Path(scratch) if args.quick else args.cache / "eval-bench") / f"{base.name}-base-f16.gguf"
        made = not gguf.is_file()
        tick = time.perf_counter()
        make_gguf(base, None, gguf, source)
        make_s = time.perf_counter() - tick
        print(
            f"{len(questions)} questions, {threads} thread(s), {gguf.name} ({'made' if made else 'reused'} in {make_s:.1f} s)", flush=True
        )
        print("llama.cpp (F16) ...", flush=True)
        fast, fast_answers = bench_llama_cpp(gguf, questions, system, args.max_tokens, threads)
        q8 = gguf.with_name(gguf.name.replace("-f16.gguf", "-q8_0.gguf"))
        if not q8.is_file():
            from docpipe.runtime.gguf_quantize import quantize

            quantize(gguf, q8, "q8_0", threads)
        print("llama.cpp (Q8_0, eval.gguf_type: q8_0) ...", flush=True)
        q8_figures, q8_answers = bench_llama_cpp(q8, questions, system, args.max_tokens, threads)
        print("transformers ...", flush=True)
        reference, reference_answers = bench_transformers(
            base, questions, system, args.max_tokens, threads, min(args.sweep_questions, len(questions))
        )
        result = {
            "machine": _machine(threads),
            "settings": {
                "base_model": "tiny random llama (--quick)" if args.quick else args.base_model,
                "dataset": str(dataset),
                "questions": len(questions),
                "max_tokens": args.max_tokens,
                "decoding": "greedy",
                "system_prompt": system,
                "seed": args.seed,
            },
            "gguf": {"file": gguf.name, "size_mb": round(gguf.stat().st_size / 2**20, 1), "made": made, "seconds": round(make_s, 1)},
            "llama_cpp": fast,
            "llama_cpp_q8_0": q8_figures,
            "transformers": reference,
            "speedup": round(reference["seconds"] / fast["seconds"], 2) if fast["seconds"] else None,
            "speedup_q8_0": round(reference["seconds"] / q8_figures["seconds"], 2) if q8_figures["seconds"] else None,
            "answers": compare(questions, fast_answers, reference_answers),
            "answers_q8_0": compare(questions, q8_answers, reference_answers),
            "goal": f"100 questions in < {GOAL_S:.0f} s through llama.cpp (F16, what docpipe eval uses by default)",
            "meets_goal": fast["seconds_per_100_questions"] < GOAL_S,
        }
    out = args.out or ROOT / "bench-results" / ("eval-quick.json" if args.quick else "eval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"\nllama.cpp Q8_0 {q8_figures['seconds_per_100_questions']} s/100 questions ({q8_figures['tokens_per_s']} tok/s), "
        f"F16 {fast['seconds_per_100_questions']} s/100 ({fast['tokens_per_s']} tok/s) vs transformers "
        f"{reference['seconds_per_100_questions']} s/100 ({reference['tokens_per_s']} tok/s, batch {reference['batch_size']}); "
        f"identical answers: {result['answers']['identical_texts']}/{len(questions)}; goal met: {result['meets_goal']}"
    )


if __name__ == "__main__":
    main()
