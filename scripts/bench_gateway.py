#!/usr/bin/env python
"""Benchmark the LLM gateway's overhead: generation throughput of the packaged local model
through docpipe's Gateway (cache off) against raw llama-cpp-python on the same requests.

    .venv/bin/python scripts/bench_gateway.py [--prompts 12] [--max-tokens 128] [--out bench-results/gateway.json]

Each prompt asks for Q&A pairs about a short passage, constrained to the schema of
docpipe's Q&A writer, at temperature 0 with a fixed seed. The two paths alternate which goes first on each
prompt, so a slow patch of the machine hits both alike. Both run on their own Llama with the
same settings, and raw llama-cpp-python also starts each call from a reset context, as the
gateway's provider does (for reproducible replies). A third run, raw with llama-cpp-python's
default prompt-prefix reuse, shows what that reset costs; it is not part of the overhead figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

from docpipe.config import LLMConfig
from docpipe.llm import open_llm
from docpipe.llm.client import ChatMessage
from docpipe.llm.local_provider import chat_arguments
from docpipe.llm.providers import GenerationParams
from docpipe.runtime import packaged
from docpipe.runtime.llama import default_threads

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = (
    "You write question-answer pairs about a passage of a document. Use only the passage. For each "
    "pair give a question, a short answer from the passage, and a quote copied word for word from it. "
    'Reply with JSON only: {"pairs": [{"question": "...", "answer": "...", "quote": "..."}]}'
)
_TEXT = {"type": "string", "minLength": 3, "maxLength": 200}
SCHEMA = {  # the shape of docpipe's Q&A writer reply (docpipe/qa/agents.py DraftPairs)
    "type": "object",
    "properties": {
        "pairs": {
            "type": "array",
            "minItems": 1,
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {"question": _TEXT, "answer": _TEXT, "quote": _TEXT},
                "required": ["question", "answer", "quote"],
            },
        }
    },
    "required": ["pairs"],
}
PASSAGES = [
    "The reading room opens at nine and closes at five on weekdays. On Saturdays it closes at one.",
    "Visitors must register at the front desk and show a photo ID before entering the stacks.",
    "Rare books may be read only in the supervised room on the second floor, with pencils, not pens.",
    "The library lends up to twelve items at a time for three weeks; renewals can be made online twice.",
    "Late returns cost twenty cents a day per item, up to a maximum of five dollars.",
    "The digitisation lab scans maps up to A0 size at 600 dpi and delivers TIFF and PDF copies.",
    "Group study rooms seat six people and can be booked for two hours, up to a week in advance.",
    "Wi-Fi is free for all visitors; the network name is LIB-GUEST and no password is needed.",
    "The archive holds the city council minutes from 1850 to 1990 on microfilm.",
    "Interlibrary loans arrive within ten working days and must be collected within a week.",
    "Printing costs ten cents a page in black and white and fifty cents in colour.",
    "Children under twelve must be accompanied by an adult in all areas except the children's wing.",
]


def requests(n: int) -> list[list[ChatMessage]]:
    asks = []
    for i in range(n):
        passage = PASSAGES[i % len(PASSAGES)]
        pairs = 1 + (i // len(PASSAGES)) % 3  # more prompts than passages: ask for more pairs
        user = f"Passage:\n<<<\n{passage}\n>>>\n\nWrite {pairs} different question-answer pairs about this passage."
        asks.append([ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=user)])
    return asks


def _raw_llama(path: Path, cfg: LLMConfig, threads: int):
    import llama_cpp

    return llama_cpp.Llama(
        model_path=str(path), n_ctx=cfg.context_tokens, n_threads=threads, n_threads_batch=threads, seed=cfg.seed, verbose=False
    )


def _raw_call(llama, messages: list[ChatMessage], schema: dict, params: GenerationParams, reset: bool) -> tuple[str, int, float]:
    plain = [{"role": m.role, "content": m.content} for m in messages]
    started = time.perf_counter()
    if reset:
        llama.reset()
    response = llama.create_chat_completion(messages=plain, **chat_arguments(schema, params))
    elapsed = time.perf_counter() - started
    return response["choices"][0]["message"]["content"], response["usage"]["completion_tokens"], elapsed


def _gateway_call(gateway, messages: list[ChatMessage], schema: dict) -> tuple[str, int, float]:
    before = gateway.usage().get("bench", {}).get("completion_tokens", 0)
    started = time.perf_counter()
    text = gateway.complete(messages, schema=schema, purpose="bench")
    elapsed = time.perf_counter() - started
    return text, gateway.usage()["bench"]["completion_tokens"] - before, elapsed


def _summary(runs: list[tuple[str, int, float]]) -> dict:
    tokens, seconds = sum(r[1] for r in runs), sum(r[2] for r in runs)
    return {"completion_tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "gateway.json")
    args = parser.parse_args()

    cfg = LLMConfig(model="auto", temperature=0, seed=0, max_tokens=args.max_tokens, timeout_s=600, threads=args.threads)
    gateway = open_llm(cfg, cache_dir=None)
    if gateway is None:
        raise SystemExit("the packaged model or llama-cpp-python is not installed (scripts/setup.sh installs both)")
    params = GenerationParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed)
    schema = SCHEMA
    path = packaged.verified_model_path()
    raw, raw_reuse = _raw_llama(path, cfg, args.threads), _raw_llama(path, cfg, args.threads)
    asks = requests(args.prompts)
    warm = [ChatMessage(role="user", content="Say hi.")]
    # Load all three models before timing anything.
    _gateway_call(gateway, warm, schema)
    _raw_call(raw, warm, schema, params, reset=True)
    _raw_call(raw_reuse, warm, schema, params, reset=False)

    through_gateway, direct, reuse = [], [], []
    for i, messages in enumerate(asks):
        if i % 2 == 0:  # alternate which path goes first
            through_gateway.append(_gateway_call(gateway, messages, schema))
            direct.append(_raw_call(raw, messages, schema, params, reset=True))
        else:
            direct.append(_raw_call(raw, messages, schema, params, reset=True))
            through_gateway.append(_gateway_call(gateway, messages, schema))
        reuse.append(_raw_call(raw_reuse, messages, schema, params, reset=False))
        print(
            f"prompt {i + 1}/{len(asks)}: gateway {through_gateway[-1][2]:.2f} s, raw {direct[-1][2]:.2f} s, {direct[-1][1]} tokens",
            flush=True,
        )

    gw, rw = _summary(through_gateway), _summary(direct)
    per_prompt = [(g[2] - r[2]) / r[2] * 100 for g, r in zip(through_gateway, direct)]
    report = {
        "model": gateway.model,
        "llama_cpp_python": version("llama-cpp-python"),
        "machine": {"cores": os.cpu_count(), "threads": args.threads, "python": platform.python_version()},
        "prompts": len(asks),
        "max_tokens": args.max_tokens,
        "schema": "pairs of question, answer, quote",
        "gateway": gw,
        "raw_llama_cpp": rw,
        "overhead_pct": round((rw["tokens_per_s"] - gw["tokens_per_s"]) / rw["tokens_per_s"] * 100, 2),
        "median_per_prompt_overhead_pct": round(statistics.median(per_prompt), 2),
        "identical_replies": sum(g[0] == r[0] for g, r in zip(through_gateway, direct)),
        "raw_llama_cpp_prefix_reuse": _summary(reuse)
        | {"note": "llama-cpp-python default (no reset): faster prompts, replies depend on the call before"},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    gateway.close()


if __name__ == "__main__":
    main()
