"""Write the dataset folder: splits, probes, DPO pairs, other formats, the report, the
manifest (what the dataset was made from) and the card (what it holds and what was lost)."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from docpipe import __version__
from docpipe.config import GenerateConfig, LLMConfig
from docpipe.contracts import (
    Chunk,
    DatasetManifest,
    DatasetReport,
    Document,
    GenerationInfo,
    ManifestModel,
    ManifestPrompt,
    ManifestSource,
    ModelUsage,
    QAPair,
)
from docpipe.layout import DatasetLayout, Layout
from docpipe.llm.client import LLMClient
from docpipe.qa.agents import Paraphraser, QAWriter, SupportJudge
from docpipe.qa.card import render_card
from docpipe.qa.curate import Curated, Source
from docpipe.qa.dpo import preference_pairs
from docpipe.qa.formats import to_alpaca, to_sharegpt, training_record
from docpipe.qa.phrasings import Reword
from docpipe.qa.probes import abstention_probes, rephrased_probes
from docpipe.qa.refusals import refusal_records
from docpipe.qa.rehearsal import rehearsal_records
from docpipe.qa.splits import QuestionSplit, fact_id, split_by_question, split_by_section
from docpipe.runtime.chat_format import SYSTEM_PROMPT
from docpipe.runtime.citation import content_words
from docpipe.store import atomic_write_text, sha256_file, stable_hash, write_json, write_jsonl


def files(folder: DatasetLayout) -> dict[str, Path]:
    """The dataset's JSONL files by split name, in the order the report lists them."""
    return {
        "train": folder.train,
        "eval": folder.eval,
        "rejected": folder.rejected,
        "probes_paraphrase": folder.probes_paraphrase,
        "probes_abstain": folder.probes_abstain,
        "dpo": folder.dpo,
    }


def write_dataset(
    layout: Layout,
    gen: GenerateConfig,
    llm_cfg: LLMConfig,
    docs: list[Document],
    chunks: list[Chunk],
    with_content: list[Chunk],
    curated: Curated,
    sources: dict[str, Source],
    llm: LLMClient | None,
    llm_info: GenerationInfo,
    started: float,
) -> DatasetReport:
    folder = layout.dataset
    parts = _split(curated.accepted, chunks, gen, _rewording(llm) if llm_info.trusted and llm is not None else None)
    chunk_words = [content_words(c.text) for c in with_content]
    qa_records = [training_record(pair, fact) for pair, fact in parts.train]
    rehearsal = rehearsal_records([sources[c.id] for c in with_content]) if gen.rehearsal else []
    refusals = refusal_records(chunk_words, round(gen.refusal_share * len(qa_records)), gen.seed)
    train_records = qa_records + rehearsal + refusals
    eval_records = [training_record(pair, fact) for pair, fact in parts.unseen]
    trained_pairs = [pair for pair, _ in parts.train]
    records = {
        "train": train_records,
        "eval": eval_records,
        "rejected": [r.record() for r in curated.rejected],
        "probes_paraphrase": rephrased_probes(parts.rephrased),
        "probes_abstain": abstention_probes(chunk_words, gen.abstention_probes, gen.seed),
        "dpo": preference_pairs(trained_pairs, curated.rejected) if gen.dpo else [],
    }
    for name, path in files(folder).items():
        # As plain dicts: the bytes (and so the dataset hash, hence the run id) stay what earlier versions wrote.
        write_jsonl(path, [r.model_dump(mode="json") if isinstance(r, BaseModel) else r for r in records[name]])
    for style, convert in (("alpaca", to_alpaca), ("sharegpt", to_sharegpt)):
        for split, rows in (("train", train_records), ("eval", eval_records)):
            write_json(folder.in_format(style, split), [convert(r) for r in rows])
    llm_info = llm_info.model_copy(update={"usage": _usage(llm)})
    result = DatasetReport(
        documents=len(docs),
        chunks=len(chunks),
        funnel=curated.funnel,
        rejections=_reasons(curated),
        tiers=_tiers(curated),
        splits={name: len(rows) for name, rows in records.items()},
        holdout=gen.holdout,
        facts=len({fact for _, fact in parts.train + parts.unseen}),
        train_kinds=dict(Counter(r.kind for r in train_records)),
        leaks=parts.leaks,
        llm=llm_info,
        seconds=round(time.monotonic() - started, 2),
        **coverage(docs, with_content, curated),
    )
    write_json(folder.report, result)
    write_json(folder.manifest, manifest(folder, gen, llm_cfg, docs, with_content, llm))
    atomic_write_text(folder.card, render_card(result, trained_pairs[:3]))
    return result


def _usage(llm: LLMClient | None) -> dict[str, ModelUsage]:
    """The gateway's counts per purpose (a client without a gateway counts nothing)."""
    counts = llm.usage() if llm is not None and hasattr(llm, "usage") else {}
    return {purpose: ModelUsage(**row) for purpose, row in counts.items()}


def _split(pairs: list[QAPair], chunks: list[Chunk], gen: GenerateConfig, reword: Reword | None) -> QuestionSplit:
    """By question (default), or by section as a diagnostic: then the held-out sections' pairs are the unseen set."""
    if gen.holdout == "questions":
        return split_by_question(
            pairs, gen.eval_fraction, gen.phrasings_per_fact, reword, gen.paraphrase_probes, gen.dedup_threshold, gen.seed
        )
    train, held_out = split_by_section(pairs, {c.id: c for c in chunks}, gen.eval_fraction, gen.seed)
    split = split_by_question(train, 0.0, gen.phrasings_per_fact, reword, gen.paraphrase_probes, gen.dedup_threshold, gen.seed)
    split.unseen = [(pair, fact_id(pair)) for pair in held_out]
    return split


def _rewording(llm: LLMClient) -> Reword:
    """The model's rewording of a question (None when it fails: the rule rewordings remain)."""
    agent = Paraphraser(llm)

    def reword(question: str) -> str | None:
        try:
            return agent.run(question).value.question
        except ValueError:  # the model failed and no rewording rule applies
            return None

    return reword


def coverage(docs: list[Document], with_content: list[Chunk], curated: Curated) -> dict[str, Any]:
    """Which documents and chunks the accepted pairs cover, and why each uncovered document is not."""
    text_docs = {c.doc_id for c in with_content}
    covered_docs = {p.citation.doc_id for p in curated.accepted}
    doc_of_chunk = {c.id: c.doc_id for c in with_content}
    lost: dict[str, Counter] = {}
    for rejection in curated.rejected:
        lost.setdefault(doc_of_chunk[rejection.draft.chunk_id], Counter())[rejection.category] += 1
    uncovered: dict[str, str] = {}
    twins = 0
    for doc in docs:
        if doc.doc_id not in text_docs or doc.doc_id in covered_docs:
            continue
        reasons = lost.get(doc.doc_id, Counter())
        if reasons and set(reasons) == {"duplicate"}:
            twins += 1  # its content is in the dataset, through the document it repeats
            continue
        uncovered[doc.path] = "; ".join(f"{n} {why}" for why, n in reasons.most_common(3)) or "no candidates"
    return {
        "documents_with_text": len(text_docs),
        "documents_covered": len(covered_docs) + twins,
        "uncovered": uncovered,
        "chunks_with_content": len(with_content),
        "chunks_covered": len({p.chunk_id for p in curated.accepted}),
    }


def _reasons(curated: Curated) -> dict[str, int]:
    return dict(Counter(r.category for r in curated.rejected).most_common())


def _tiers(curated: Curated) -> dict[str, dict[str, int]]:
    tiers: dict[str, dict[str, int]] = {}
    for tier, accepted in [(r.draft.tier, 0) for r in curated.rejected] + [(p.tier, 1) for p in curated.accepted]:
        entry = tiers.setdefault(tier, {"candidates": 0, "accepted": 0})
        entry["candidates"] += 1
        entry["accepted"] += accepted
    return tiers


def _model_file_hash(llm: LLMClient | None) -> str | None:
    """sha256 of a local model's GGUF file; None for an API model (its name is all there is)."""
    path = getattr(getattr(llm, "provider", None), "model_path", None)
    return sha256_file(Path(path)) if path else None


def manifest(
    folder: DatasetLayout, gen: GenerateConfig, llm_cfg: LLMConfig, docs: list[Document], with_content: list[Chunk], llm: LLMClient | None
) -> DatasetManifest:
    """What the dataset was made from, by hash: enough to tell whether two datasets can differ."""
    used = {c.doc_id for c in with_content}
    prompts = {agent.__name__: agent.system_prompt for agent in (QAWriter, SupportJudge, Paraphraser)}
    prompts["training system prompt"] = SYSTEM_PROMPT
    return DatasetManifest(
        docpipe_version=__version__,
        sources=[ManifestSource(path=d.path, sha256=d.sha256) for d in docs if d.doc_id in used],
        config={"generate": gen.model_dump(mode="json"), "llm": llm_cfg.model_dump(mode="json")},
        prompts={name: ManifestPrompt(sha256=stable_hash(text), text=text) for name, text in prompts.items()},
        model=ManifestModel(name=llm.model if llm else "none (extractive generator)", sha256=_model_file_hash(llm)),
        files={path.name: sha256_file(path) for path in files(folder).values()},
    )
