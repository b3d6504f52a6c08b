"""`docpipe generate`: documents.jsonl in, a curated Q&A dataset in OUT/dataset/ out.

Chunks are written, each chunk gets pairs from the QA agent (model, then the extractive
generator when the model fails or falls short), every candidate is checked and deduplicated,
and the survivors are split without leakage. Each chunk's candidates are stored as soon as
they exist, and every model reply is cached by the gateway: a crash or Ctrl-C loses nothing,
and the same command resumes without repeating a call that succeeded.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docpipe.agents.base import AgentResult, Tier
from docpipe.chunk import chunk_document
from docpipe.config import DocpipeConfig, GenerateConfig
from docpipe.contracts import Chunk, DatasetReport, Document, QAPair
from docpipe.llm.client import LLMClient
from docpipe.qa.agents import ChunkTask, JudgeTask, QAWriter, SupportJudge
from docpipe.qa.citation import normalize
from docpipe.qa.curate import Draft, Source, check, curate
from docpipe.qa.dataset import write_dataset
from docpipe.qa.extractive import extractive_pairs, information_units
from docpipe.store import Store, stable_hash, write_jsonl

GENERATE_VERSION = 1  # bump when generation changes what it produces, so stored chunks are redone
_CACHE = "qa"
_TOKEN = re.compile(r"\w+|[^\w\s]")
ChunkHook = Callable[[Chunk, int], None]  # a chunk finished, with its number of candidates


class GenerateError(Exception):
    """The run cannot proceed (no ingested documents, a model that cannot be opened)."""


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to a BPE tokenizer's count on English prose (issue 4 brings the base model's own)."""
    return len(_TOKEN.findall(text))


def pairs_wanted(chunk: Chunk, cfg: GenerateConfig) -> int:
    """Pairs to ask of a chunk: in proportion to its facts (0 for a chunk with none)."""
    units = information_units(chunk.text)
    if units == 0:
        return 0
    return max(cfg.min_pairs_per_chunk, min(cfg.max_pairs_per_chunk, math.ceil(units * cfg.pairs_per_fact)))


def load_documents(out_dir: Path) -> list[Document]:
    path = Path(out_dir) / "documents.jsonl"
    if not path.is_file():
        raise GenerateError(f"no {path}: run `docpipe ingest DOCS --out {out_dir}` first")
    docs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                docs.append(Document.model_validate_json(line))
            except ValueError as exc:  # broken JSON or a record that is not a Document
                raise GenerateError(f"{path} line {number} is not a document ({_first_problem(exc)}): "
                                    f"run `docpipe ingest DOCS --out {out_dir}` again") from None
    return docs


def _first_problem(exc: ValueError) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 else lines[0] if lines else type(exc).__name__)[:120]


def make_chunks(docs: list[Document], cfg: GenerateConfig) -> list[Chunk]:
    return [chunk for doc in docs for chunk in chunk_document(doc, count_tokens, cfg.chunk_tokens)]


def generate_candidates(
    chunks: list[Chunk], sources: dict[str, Source], cfg: DocpipeConfig, llm: LLMClient | None, store: Store,
    on_chunk: ChunkHook | None = None,
) -> tuple[list[Draft], dict[str, Any]]:
    """Every chunk's candidate drafts (stored per chunk, reused when unchanged) and the agent's tier counts.

    The model first writes for a trial of `model_trial_chunks` chunks. If too few of its pairs
    pass the checks there, it is not asked again: the other chunks go to the extractive
    generator at once, instead of paying for replies that would be thrown away.
    """
    tasks = [ChunkTask(c, n) for c in chunks if (n := pairs_wanted(c, cfg.generate)) > 0]
    trial, rest = tasks[: cfg.generate.model_trial_chunks], tasks[cfg.generate.model_trial_chunks :]
    results: dict[str, list[Draft]] = {}
    stats: Counter = Counter()
    errors: list[str] = []
    _write_pairs(trial, llm, cfg, sources, store, results, stats, errors, on_chunk)
    if llm is not None and rest:
        rate = _acceptance(trial, results, sources, cfg.generate)
        stats["model trial acceptance %"] = round(100 * rate)
        if rate < cfg.generate.min_model_acceptance:
            stats["model dropped after trial"] = 1
            llm = None
    _write_pairs(rest, llm, cfg, sources, store, results, stats, errors, on_chunk)
    drafts = [d for chunk in chunks for d in results.get(chunk.id, [])]
    info: dict[str, Any] = dict(stats)
    if errors and not (stats["chunks by structured"] or stats["chunks by json"]):
        info["model never answered usefully"] = errors[0]  # e.g. a misspelled model name or a missing key
    return drafts, info


def _write_pairs(tasks: list[ChunkTask], llm: LLMClient | None, cfg: DocpipeConfig, sources: dict[str, Source], store: Store,
                 results: dict[str, list[Draft]], stats: Counter, errors: list[str], on_chunk: ChunkHook | None) -> None:
    """Fill `results` for `tasks`: from the store when done before, else from the QA agent."""
    agent = QAWriter(llm)
    # What else decides a chunk's candidates: the model's sampling and the checks the top-up uses.
    settings = (cfg.llm.model_dump(include={"api_base", "temperature", "max_tokens", "seed"}),
                cfg.generate.model_dump(include={"min_support", "min_question_chars", "max_question_chars", "min_answer_chars", "max_answer_chars"}))
    todo: list[tuple[ChunkTask, str]] = []
    for task in tasks:
        key = stable_hash(GENERATE_VERSION, task.chunk.id, task.pairs, llm.model if llm else None, agent.system_prompt, settings)
        stored = store.get(_CACHE, key)
        if stored is None:
            todo.append((task, key))
            continue
        results[task.chunk.id] = [Draft(**d) for d in stored["drafts"]]
        stats.update(stored["stats"])
        errors += stored["errors"]
        if on_chunk:
            on_chunk(task.chunk, len(results[task.chunk.id]))

    def finish(task: ChunkTask, key: str, result: AgentResult) -> None:
        drafts = _drafts(task, result, llm) + _top_up(task, result, sources[task.chunk.id], cfg.generate)
        chunk_stats = {f"chunks by {result.tier.value}": 1, "model calls": result.calls, "failed replies": len(result.errors)}
        store.put(_CACHE, key, {"drafts": [d.__dict__ for d in drafts], "stats": chunk_stats, "errors": result.errors})
        results[task.chunk.id] = drafts
        stats.update(chunk_stats)
        errors.extend(result.errors)
        if on_chunk:
            on_chunk(task.chunk, len(drafts))

    if llm is None:
        for task, key in todo:
            finish(task, key, agent.run(task))
    elif todo:
        asyncio.run(_run_async(agent, todo, finish, cfg.llm.concurrency))


def _acceptance(tasks: list[ChunkTask], results: dict[str, list[Draft]], sources: dict[str, Source], cfg: GenerateConfig) -> float:
    """Share of the model's own pairs (not the extractive top-up) that pass the checks."""
    written = [d for task in tasks for d in results.get(task.chunk.id, []) if d.tier != Tier.heuristic.value]
    passed = sum(isinstance(check(d, sources[d.chunk_id], cfg), QAPair) for d in written)
    return passed / len(written) if written else 0.0


async def _run_async(agent: QAWriter, todo: list[tuple[ChunkTask, str]], finish: Callable, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(task: ChunkTask, key: str) -> None:
        async with gate:
            result = await agent.arun(task)
        finish(task, key, result)  # stored before the next one starts: a crash keeps it

    await asyncio.gather(*(one(task, key) for task, key in todo))


def _drafts(task: ChunkTask, result: AgentResult, llm: LLMClient | None) -> list[Draft]:
    producer = llm.model if llm is not None and result.tier != Tier.heuristic else "extractive"
    return [Draft(p.question, p.answer, p.quote, task.chunk.id, result.tier.value, producer) for p in result.value.pairs]


def _top_up(task: ChunkTask, result: AgentResult, source: Source, cfg: GenerateConfig) -> list[Draft]:
    """Extractive pairs for what the model fell short of, so every chunk with content gets its share."""
    if result.tier == Tier.heuristic:
        return []
    good = [p for p in result.value.pairs if isinstance(check(Draft(p.question, p.answer, p.quote, task.chunk.id, "", ""), source, cfg), QAPair)]
    missing = task.pairs - len(good)
    if missing <= 0:
        return []
    asked = {normalize(p.question) for p in result.value.pairs}
    extra = [d for d in extractive_pairs(task.chunk, task.pairs) if normalize(d.question) not in asked]
    return [Draft(d.question, d.answer, d.quote, task.chunk.id, Tier.heuristic.value, "extractive") for d in extra[:missing]]


def judge_with(llm: LLMClient | None, cfg: GenerateConfig) -> Callable[[QAPair], str | None] | None:
    """The optional LLM judge: it sees only the quote and the answer."""
    if not cfg.judge or llm is None:
        return None
    judge = SupportJudge(llm)

    def verdict(pair: QAPair) -> str | None:
        result = judge.run(JudgeTask(pair.citation.quote, pair.answer, cfg.min_support))
        return None if result.value.supported else f"judge: not supported ({result.value.reason[:120]})"

    return verdict


_DEFAULT_LLM: Any = object()  # run() opens the configured model unless a test hands one in


def run(out_dir: Path, cfg: DocpipeConfig, llm: LLMClient | None = _DEFAULT_LLM,
        on_start: Callable[[list[Chunk]], None] | None = None, on_chunk: ChunkHook | None = None) -> DatasetReport:
    """Make OUT/chunks.jsonl and OUT/dataset/ from OUT/documents.jsonl."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    docs = load_documents(out_dir)
    chunks = make_chunks(docs, cfg.generate)
    if not any(pairs_wanted(c, cfg.generate) for c in chunks):
        raise GenerateError(f"none of the {len(docs)} documents in {out_dir / 'documents.jsonl'} has text to ask about "
                            f"(see {out_dir / 'ingest_report.json'} for why files were not read)")
    write_jsonl(out_dir / "chunks.jsonl", chunks)
    by_id = {doc.doc_id: doc for doc in docs}
    sources = {chunk.id: Source(chunk, by_id[chunk.doc_id]) for chunk in chunks}
    if llm is _DEFAULT_LLM:
        llm = _open_llm(cfg, out_dir)
    with_content = [c for c in chunks if pairs_wanted(c, cfg.generate) > 0]
    if on_start:
        on_start(with_content)
    drafts, agent_stats = generate_candidates(chunks, sources, cfg, llm, Store(out_dir), on_chunk)
    trusted = not agent_stats.get("model dropped after trial")  # a model that failed the trial does not judge or reword either
    curated = curate(drafts, sources, cfg.generate, judge_with(llm if trusted else None, cfg.generate))
    llm_info = {"model": llm.model if llm else "none (extractive generator)", "agent": agent_stats, "trusted": trusted}
    return write_dataset(out_dir, cfg, docs, chunks, with_content, curated, llm, llm_info, started)


def _open_llm(cfg: DocpipeConfig, out_dir: Path) -> LLMClient | None:
    from docpipe.llm import open_llm
    from docpipe.llm.packaged import PackagedModelError

    try:
        return open_llm(cfg.llm, cache_dir=out_dir / "cache" / "llm")
    except (ImportError, FileNotFoundError, ValueError, PackagedModelError) as exc:
        raise GenerateError(str(exc)) from None
