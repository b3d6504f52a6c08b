"""Train/eval splits without leakage: pairs are split by group, never one by one.

A group is a document section (chunks under the same heading path of the same document),
joined with every other section that holds the same chunk text (the same page saved as
.docx and as .pdf), so no chunk, and no copy of it, feeds both train and eval. A corpus
with too few sections to hold some out is split by chunk instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from docpipe.contracts import Chunk, QAPair
from docpipe.runtime.citation import normalize

MIN_GROUPS = 4  # below this, sections are too coarse to hold some out: split by chunk


def split_pairs(
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
