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
)
from docpipe.layout import DatasetLayout, Layout
from docpipe.llm.client import LLMClient
from docpipe.qa.agents import Paraphraser, QAWriter, SupportJudge
from docpipe.qa.card import render_card
from docpipe.qa.curate import Curated
from docpipe.qa.dpo import preference_pairs
from docpipe.qa.extractive import paraphrase
from docpipe.qa.formats import to_alpaca, to_sharegpt, training_record
from docpipe.qa.probes import abstention_probes, paraphrase_probes
from docpipe.qa.splits import split_pairs
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
    llm: LLMClient | None,
    llm_info: GenerationInfo,
    started: float,
) -> DatasetReport:
    folder = layout.dataset
    train, evaluation = split_pairs(curated.accepted, {c.id: c for c in chunks}, gen.eval_fraction, gen.seed)
    train_records, eval_records = [training_record(p) for p in train], [training_record(p) for p in evaluation]
    records = {
        "train": train_records,
        "eval": eval_records,
        "rejected": [r.record() for r in curated.rejected],
        "probes_paraphrase": paraphrase_probes(train, _rewording(llm if llm_info.trusted else None), gen.paraphrase_probes, gen.seed),
        "probes_abstain": abstention_probes([content_words(c.text) for c in with_content], gen.abstention_probes, gen.seed),
        "dpo": preference_pairs(train, curated.rejected) if gen.dpo else [],
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
        llm=llm_info,
        seconds=round(time.monotonic() - started, 2),
        **coverage(docs, with_content, curated),
    )
    write_json(folder.report, result)
    write_json(folder.manifest, manifest(folder, gen, llm_cfg, docs, with_content, llm))
    atomic_write_text(folder.card, render_card(result, train[:3]))
    return result


def _usage(llm: LLMClient | None) -> dict[str, ModelUsage]:
    """The gateway's counts per purpose (a client without a gateway counts nothing)."""
    counts = llm.usage() if llm is not None and hasattr(llm, "usage") else {}
    return {purpose: ModelUsage(**row) for purpose, row in counts.items()}


def _rewording(llm: LLMClient | None):
    if llm is None:
        return paraphrase
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
