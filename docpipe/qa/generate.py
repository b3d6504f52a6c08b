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
from typing import Any

from docpipe.agents.base import AgentResult, Tier
from docpipe.chunk import chunk_document
from docpipe.config import GenerateConfig, LLMConfig, updated
from docpipe.contracts import Chunk, DatasetReport, Document, GenerationInfo, QAPair
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.events import EventSink, StageEvent, ignore
from docpipe.layout import Layout
from docpipe.llm.client import LLMClient
from docpipe.qa.agents import ChunkTask, JudgeTask, QAWriter, SupportJudge
from docpipe.qa.curate import Draft, Source, check, curate
from docpipe.qa.dataset import write_dataset
from docpipe.qa.extractive import extractive_pairs, information_units
from docpipe.runtime.citation import normalize
from docpipe.stage import GenerateInputs, matches_fingerprint, record_fingerprint
from docpipe.store import JsonCache, sha256_file, stable_hash, write_jsonl

GENERATE_VERSION = 1  # bump when generation changes what it produces, so stored chunks are redone
STAGE = "generate"
_TOKEN = re.compile(r"\w+|[^\w\s]")
ChunkHook = Callable[[Chunk, int], None]  # a chunk finished, with its number of candidates


class GenerateError(DocpipeError):
    """The run cannot proceed (no ingested documents, a model that cannot be opened)."""

    stage = STAGE


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to a BPE tokenizer's count on English prose (issue 4 brings the base model's own)."""
    return len(_TOKEN.findall(text))


def pairs_wanted(chunk: Chunk, cfg: GenerateConfig) -> int:
    """Pairs to ask of a chunk: in proportion to its facts (0 for a chunk with none)."""
    units = information_units(chunk.text)
    if units == 0:
        return 0
    return max(cfg.min_pairs_per_chunk, min(cfg.max_pairs_per_chunk, math.ceil(units * cfg.pairs_per_fact)))


def load_documents(layout: Layout) -> list[Document]:
    path, out_dir = layout.documents, layout.root
    if not path.is_file():
        raise GenerateError(f"no {path}: run `docpipe ingest DOCS --out {out_dir}` first", kind=ErrorKind.missing_input)
    docs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                docs.append(Document.model_validate_json(line))
            except ValueError as exc:  # broken JSON or a record that is not a Document
                raise GenerateError(
                    f"{path} line {number} is not a document ({_first_problem(exc)}): run `docpipe ingest DOCS --out {out_dir}` again",
                    kind=ErrorKind.damaged,
                ) from None
    return docs


def _first_problem(exc: ValueError) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[1] if len(lines) > 1 else lines[0] if lines else type(exc).__name__)[:120]


def make_chunks(docs: list[Document], cfg: GenerateConfig) -> list[Chunk]:
    return [chunk for doc in docs for chunk in chunk_document(doc, count_tokens, cfg.chunk_tokens)]


def generate_candidates(
    chunks: list[Chunk],
    sources: dict[str, Source],
    cfg: GenerateConfig,
    llm_cfg: LLMConfig,
    llm: LLMClient | None,
    store: JsonCache,
    on_chunk: ChunkHook | None = None,
) -> tuple[list[Draft], dict[str, Any]]:
    """Every chunk's candidate drafts (stored per chunk, reused when unchanged) and the agent's tier counts.

    The model first writes for a trial of `model_trial_chunks` chunks, and the extractive
    generator's pairs for the same chunks are checked too. If a smaller share of the model's pairs
    passes the checks than of the extractive generator's (less `model_trial_margin`), the model is
    not asked again: the other chunks go to the extractive generator at once, instead of paying
    for replies worse than what the rules write for free.
    """
    tasks = [ChunkTask(c, n) for c in chunks if (n := pairs_wanted(c, cfg)) > 0]
    trial, rest = tasks[: cfg.model_trial_chunks], tasks[cfg.model_trial_chunks :]
    results: dict[str, list[Draft]] = {}
    stats: Counter = Counter()
    errors: list[str] = []
    _write_pairs(trial, llm, cfg, llm_cfg, sources, store, results, stats, errors, on_chunk)
    if llm is not None and trial:  # reported even when the trial was every chunk: the card says how the model did
        rate, baseline = _acceptance(trial, results, sources, cfg), _extractive_acceptance(trial, sources, cfg)
        stats["model trial acceptance %"], stats["extractive trial acceptance %"] = round(100 * rate), round(100 * baseline)
        if rest and rate < baseline - cfg.model_trial_margin:
            stats["model dropped after trial"] = 1
            llm = None
    _write_pairs(rest, llm, cfg, llm_cfg, sources, store, results, stats, errors, on_chunk)
    drafts = [d for chunk in chunks for d in results.get(chunk.id, [])]
    info: dict[str, Any] = dict(stats)
    if errors and not (stats["chunks by structured"] or stats["chunks by json"]):
        info["model never answered usefully"] = errors[0]  # e.g. a misspelled model name or a missing key
    return drafts, info


def _write_pairs(
    tasks: list[ChunkTask],
    llm: LLMClient | None,
    cfg: GenerateConfig,
    llm_cfg: LLMConfig,
    sources: dict[str, Source],
    store: JsonCache,
    results: dict[str, list[Draft]],
    stats: Counter,
    errors: list[str],
    on_chunk: ChunkHook | None,
) -> None:
    """Fill `results` for `tasks`: from the store when done before, else from the QA agent."""
    agent = QAWriter(llm)
    # What else decides a chunk's candidates: the model's sampling and the checks the top-up uses.
    settings = (
        llm_cfg.model_dump(include={"api_base", "temperature", "max_tokens", "seed"}),
        cfg.model_dump(include={"min_support", "min_question_chars", "max_question_chars", "min_answer_chars", "max_answer_chars"}),
    )
    todo: list[tuple[ChunkTask, str]] = []
    for task in tasks:
        key = stable_hash(GENERATE_VERSION, task.chunk.id, task.pairs, llm.model if llm else None, agent.system_prompt, settings)
        stored = store.get(key)
        if stored is None:
            todo.append((task, key))
            continue
        results[task.chunk.id] = [Draft.model_validate(d) for d in stored["drafts"]]
        stats.update(stored["stats"])
        errors += stored["errors"]
        if on_chunk:
            on_chunk(task.chunk, len(results[task.chunk.id]))

    def finish(task: ChunkTask, key: str, result: AgentResult) -> None:
        drafts = _drafts(task, result, llm) + _top_up(task, result, sources[task.chunk.id], cfg)
        chunk_stats = {f"chunks by {result.tier.value}": 1, "model calls": result.calls, "failed replies": len(result.errors)}
        store.put(key, {"drafts": [d.model_dump() for d in drafts], "stats": chunk_stats, "errors": result.errors})
        results[task.chunk.id] = drafts
        stats.update(chunk_stats)
        errors.extend(result.errors)
        if on_chunk:
            on_chunk(task.chunk, len(drafts))

    if llm is None:
        for task, key in todo:
            finish(task, key, agent.run(task))
    elif todo:
        asyncio.run(_run_async(agent, todo, finish, llm_cfg.concurrency))


def _acceptance(tasks: list[ChunkTask], results: dict[str, list[Draft]], sources: dict[str, Source], cfg: GenerateConfig) -> float:
    """Share of the model's own pairs (not the extractive top-up) that pass the checks."""
    written = [d for task in tasks for d in results.get(task.chunk.id, []) if d.tier != Tier.heuristic.value]
    passed = sum(isinstance(check(d, sources[d.chunk_id], cfg), QAPair) for d in written)
    return passed / len(written) if written else 0.0


def _extractive_acceptance(tasks: list[ChunkTask], sources: dict[str, Source], cfg: GenerateConfig) -> float:
    """Share of the extractive generator's pairs for the same chunks that pass the same checks: the bar a model must clear."""
    drafts = [Draft.of(d, t.chunk.id, Tier.heuristic.value, "extractive") for t in tasks for d in extractive_pairs(t.chunk, t.pairs)]
    passed = sum(isinstance(check(d, sources[d.chunk_id], cfg), QAPair) for d in drafts)
    return passed / len(drafts) if drafts else 0.0


async def _run_async(agent: QAWriter, todo: list[tuple[ChunkTask, str]], finish: Callable, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(task: ChunkTask, key: str) -> None:
        async with gate:
            result = await agent.arun(task)
        finish(task, key, result)  # stored before the next one starts: a crash keeps it

    await asyncio.gather(*(one(task, key) for task, key in todo))


def _drafts(task: ChunkTask, result: AgentResult, llm: LLMClient | None) -> list[Draft]:
    producer = llm.model if llm is not None and result.tier != Tier.heuristic else "extractive"
    return [Draft.of(p, task.chunk.id, result.tier.value, producer) for p in result.value.pairs]


def _top_up(task: ChunkTask, result: AgentResult, source: Source, cfg: GenerateConfig) -> list[Draft]:
    """Extractive pairs for what the model fell short of, so every chunk with content gets its share."""
    if result.tier == Tier.heuristic:
        return []
    good = [p for p in result.value.pairs if isinstance(check(Draft.of(p, task.chunk.id, "", ""), source, cfg), QAPair)]
    missing = task.pairs - len(good)
    if missing <= 0:
        return []
    asked = {normalize(p.question) for p in result.value.pairs}
    extra = [d for d in extractive_pairs(task.chunk, task.pairs) if normalize(d.question) not in asked]
    return [Draft.of(d, task.chunk.id, Tier.heuristic.value, "extractive") for d in extra[:missing]]


def judge_with(llm: LLMClient | None, cfg: GenerateConfig) -> Callable[[QAPair], str | None] | None:
    """The optional LLM judge: it sees only the quote and the answer."""
    if not cfg.judge or llm is None:
        return None
    judge = SupportJudge(llm)

    def verdict(pair: QAPair) -> str | None:
        result = judge.run(JudgeTask(pair.citation.quote, pair.answer, cfg.min_support))
        return None if result.value.supported else f"judge: not supported ({result.value.reason[:120]})"

    return verdict


def fingerprint(inputs: GenerateInputs, cfg: GenerateConfig) -> str:
    """The ingested documents (by hash), the settings and the model: no chunk is cut, no model opened."""
    layout = inputs.layout
    documents = sha256_file(layout.documents) if layout.documents.is_file() else None
    model = inputs.llm.model if inputs.client == "from-config" else getattr(inputs.client, "model", "none")
    return stable_hash(GENERATE_VERSION, documents, cfg, updated(inputs.llm, model=model))


def is_current(inputs: GenerateInputs, cfg: GenerateConfig) -> bool:
    dataset = inputs.layout.dataset
    return matches_fingerprint(inputs.layout, STAGE, fingerprint(inputs, cfg), dataset.train, dataset.eval, dataset.report)


def run(inputs: GenerateInputs, cfg: GenerateConfig, *, events: EventSink = ignore) -> DatasetReport:
    """Make OUT/chunks.jsonl and OUT/dataset/ from OUT/documents.jsonl."""
    started = time.monotonic()
    layout = inputs.layout
    docs = load_documents(layout)
    chunks = make_chunks(docs, cfg)
    if not any(pairs_wanted(c, cfg) for c in chunks):
        raise GenerateError(
            f"none of the {len(docs)} documents in {layout.documents} has text to ask about "
            f"(see {layout.ingest_report} for why files were not read)",
            kind=ErrorKind.empty_dataset,
        )
    write_jsonl(layout.chunks, chunks)
    by_id = {doc.doc_id: doc for doc in docs}
    sources = {chunk.id: Source(chunk, by_id[chunk.doc_id]) for chunk in chunks}
    llm = _open_llm(inputs.llm, layout) if inputs.client == "from-config" else inputs.client
    with_content = [c for c in chunks if pairs_wanted(c, cfg) > 0]
    progress = _Progress(len(with_content), events)
    drafts, agent_stats = generate_candidates(chunks, sources, cfg, inputs.llm, llm, JsonCache(layout.qa_cache), progress.chunk_done)
    trusted = not agent_stats.get("model dropped after trial")  # a model that failed the trial does not judge or reword either
    curated = curate(drafts, sources, cfg, judge_with(llm if trusted else None, cfg))
    llm_info = GenerationInfo(model=llm.model if llm else "none (extractive generator)", agent=agent_stats, trusted=trusted)
    report = write_dataset(layout, cfg, inputs.llm, docs, chunks, with_content, curated, sources, llm, llm_info, started)
    record_fingerprint(layout, STAGE, fingerprint(inputs, cfg))
    return report


class _Progress:
    """Chunks done of all, with the candidates written so far, as events."""

    def __init__(self, total: int, events: EventSink):
        self.events, self.total, self.done, self.candidates = events, total, 0, 0
        events(StageEvent(stage=STAGE, step=0, total=total, message="writing Q&A pairs", metrics={"candidates": 0}))

    def chunk_done(self, chunk: Chunk, candidates: int) -> None:
        self.done += 1
        self.candidates += candidates
        self.events(StageEvent(stage=STAGE, step=self.done, total=self.total, message=chunk.path, metrics={"candidates": self.candidates}))


def _open_llm(cfg: LLMConfig, layout: Layout) -> LLMClient | None:
    from docpipe.llm import open_llm
    from docpipe.runtime.packaged import PackagedModelError

    try:
        return open_llm(cfg, cache_dir=layout.llm_cache)
    except (ImportError, FileNotFoundError, ValueError, PackagedModelError) as exc:
        raise GenerateError(str(exc), kind=ErrorKind.backend_unavailable) from None
