"""Train/eval splits without leakage.

By default (`holdout: questions`) the split is by question, never by content: every chunk of every
document is trained on, since a closed-book model cannot answer what it never saw. What is held out:

- rephrased: for each fact, one wording never trained on (the others are), so the evaluation asks
  what the model knows in words it did not learn;
- unseen: for a sample of chunks, one fact whose question is never asked in training (its chunk is:
  as other facts' questions and, with rehearsal, as its text).

A held-out question that is a near-duplicate of a training question (or, for unseen facts, of a
training question and answer) is a leak: the existing MinHash dedup finds them across the splits,
they are dropped from the held-out sets, and the count is reported.

`holdout: sections` keeps the old diagnostic: pairs are split by group, never one by one. A group is
a document section (chunks under the same heading path of the same document), joined with every
other section that holds the same chunk text (the same page saved as .docx and as .pdf), so no
chunk, and no copy of it, feeds both train and eval. A corpus with too few sections to hold some
out is split by chunk instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from docpipe.contracts import Chunk, QAPair
from docpipe.qa.dedup import find_duplicates
from docpipe.qa.phrasings import Reword, wordings
from docpipe.runtime.citation import normalize
from docpipe.store import stable_hash

MIN_GROUPS = 4  # below this, sections are too coarse to hold some out: split by chunk


def split_by_section(
    pairs: Sequence[QAPair], chunks: dict[str, Chunk], eval_fraction: float, seed: int = 0
) -> tuple[list[QAPair], list[QAPair]]:
    """(train, eval): eval gets whole groups until it holds about `eval_fraction` of the pairs."""
    group_of = _groups(pairs, chunks, by_section=True)
    if len(set(group_of.values())) < MIN_GROUPS:
        group_of = _groups(pairs, chunks, by_section=False)
    sizes: dict[str, int] = {}
    for pair in pairs:
        sizes[group_of[pair.chunk_id]] = sizes.get(group_of[pair.chunk_id], 0) + 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    held_out: set[str] = set()
    held = 0
    target = eval_fraction * len(pairs)
    for group in order[:-1]:  # the last group always stays in train
        if held >= target:
            break
        if held + sizes[group] > 1.5 * target:
            continue  # one big section would hold out far more than asked (37% of the corpus instead of 15%)
        held_out.add(group)
        held += sizes[group]
    train = [p for p in pairs if group_of[p.chunk_id] not in held_out]
    evaluation = [p for p in pairs if group_of[p.chunk_id] in held_out]
    return train, evaluation


def _groups(pairs: Sequence[QAPair], chunks: dict[str, Chunk], by_section: bool) -> dict[str, str]:
    """chunk id -> group id: union of the chunk's section (or the chunk alone) and its text's twins."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def union(a: str, b: str) -> None:
        # The smaller key becomes the root, so a group's id is its smallest member whatever the order of the
        # unions: set order changes with PYTHONHASHSEED, and the split (hence the dataset and the run id) did too.
        low, high = sorted((find(a), find(b)))
        parent[high] = low

    chunk_ids = sorted({p.chunk_id for p in pairs})
    for chunk_id in chunk_ids:
        chunk = chunks[chunk_id]
        own = f"section:{chunk.doc_id}:{' > '.join(chunk.section)}" if by_section else f"chunk:{chunk.id}"
        union(f"text:{normalize(chunk.text)}", own)
        union(chunk_id, own)
    return {chunk_id: find(chunk_id) for chunk_id in chunk_ids}


def fact_id(pair: QAPair) -> str:
    """The fact a pair asks about: its chunk and its quote. Pairs that quote the same words share it."""
    return stable_hash("fact", pair.chunk_id, normalize(pair.citation.quote))[:16]


def asked(pair: QAPair, question: str) -> QAPair:
    """The pair asked in another wording: same answer and citation, its own id."""
    if question == pair.question:
        return pair
    return pair.model_copy(update={"question": question, "id": stable_hash(pair.id, question)[:16]})


@dataclass
class QuestionSplit:
    train: list[tuple[QAPair, str]] = field(default_factory=list)  # every trained wording, with its fact id
    unseen: list[tuple[QAPair, str]] = field(default_factory=list)  # facts never asked in training
    rephrased: list[tuple[QAPair, QAPair]] = field(default_factory=list)  # (held-out wording, the trained pair it rewords)
    leaks: dict[str, int] = field(default_factory=dict)  # held-out questions dropped as near-duplicates of training


def split_by_question(
    pairs: Sequence[QAPair],
    eval_fraction: float,
    phrasings: int,
    reword: Reword | None = None,
    max_rephrased: int = 1000,
    dedup_threshold: float = 0.8,
    seed: int = 0,
) -> QuestionSplit:
    """Every fact trained in up to `phrasings` wordings, one more held out; a sample of facts held out whole.

    Args:
        pairs: the accepted pairs; each is one fact (pairs quoting the same words of a chunk are one fact).
        eval_fraction: share of the facts held out whole (the unseen set), one per chunk at most.
        phrasings: wordings trained per fact.
        reword: a model's rewording, when a trusted model is configured; rules otherwise.
        max_rephrased: most held-out wordings kept; facts past it train every wording they have.
        dedup_threshold: Jaccard similarity from which a held-out question leaks a training one.
        seed: the sample of chunks and facts.
    """
    facts: dict[str, list[QAPair]] = {}
    for pair in pairs:
        facts.setdefault(fact_id(pair), []).append(pair)
    held_facts = _unseen_facts(facts, eval_fraction, seed)
    split = QuestionSplit()
    for fact, members in facts.items():
        if fact in held_facts:
            split.unseen += [(pair, fact) for pair in members]
            continue
        asked_already: set[str] = set()  # two pairs of one fact can word a question alike: each wording is trained once
        for pair in members:
            questions = [q for q in wordings(pair, phrasings + 1, reword) if q.casefold() not in asked_already]
            asked_already.update(q.casefold() for q in questions)
            if not questions:
                continue
            hold = len(questions) > 1 and len(split.rephrased) < max_rephrased
            trained = questions[:-1] if hold else questions[:phrasings]
            split.train += [(asked(pair, q), fact) for q in trained]
            if hold:
                split.rephrased.append((asked(pair, questions[-1]), pair))
    _drop_leaks(split, dedup_threshold)
    return split


MIN_UNSEEN = 10  # fewer unseen questions than this measure nothing: a small corpus holds out up to this many facts


def _unseen_facts(facts: dict[str, list[QAPair]], eval_fraction: float, seed: int) -> set[str]:
    """About `eval_fraction` of the facts (at least MIN_UNSEEN when there are chunks enough), at most one per chunk,
    from chunks with two or more: the chunk is still trained on through its other facts (and its rehearsal)."""
    by_chunk: dict[str, list[str]] = {}
    for fact, members in facts.items():
        by_chunk.setdefault(members[0].chunk_id, []).append(fact)
    eligible = sorted(chunk for chunk, ids in by_chunk.items() if len(ids) >= 2)
    wanted = min(len(eligible), max(round(eval_fraction * len(facts)), MIN_UNSEEN if eval_fraction > 0 else 0))
    rng = random.Random(seed)
    return {rng.choice(sorted(by_chunk[chunk])) for chunk in rng.sample(eligible, wanted)}


def _drop_leaks(split: QuestionSplit, threshold: float) -> None:
    """Held-out questions that repeat training ones (by MinHash, as the dedup does) are dropped and counted."""
    trained = [pair for pair, _ in split.train]
    if not trained:
        return
    # Rephrased: the question alone (its answer is the trained fact's by design); unseen: question and answer.
    asked_only = find_duplicates([(p.question, "") for p in trained] + [(p.question, "") for p, _ in split.rephrased], threshold)
    leaked = {i - len(trained) for i, (kept, _) in asked_only.dropped.items() if i >= len(trained) and kept < len(trained)}
    split.leaks["rephrased"] = len(leaked)
    split.rephrased = [r for i, r in enumerate(split.rephrased) if i not in leaked]
    with_answers = find_duplicates([(p.question, p.answer) for p in trained] + [(p.question, p.answer) for p, _ in split.unseen], threshold)
    leaked = {i - len(trained) for i, (kept, _) in with_answers.dropped.items() if i >= len(trained) and kept < len(trained)}
    split.leaks["unseen"] = len(leaked)
    split.unseen = [u for i, u in enumerate(split.unseen) if i not in leaked]
