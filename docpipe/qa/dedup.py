"""Find duplicate Q&A pairs: exact (normalised question) and near (MinHash LSH on the question,
and on question + answer), keeping the first of each group.

Near-duplicates are what a generator produces when it asks the same thing twice in other
words ("When does the room open?" / "When does the reading room open?"); left in, they
inflate the dataset and leak between train and eval.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from docpipe.qa.citation import LOOKALIKES

_PUNCT = re.compile(r"[^\w\s]")
# LSH bands tuned to miss few true pairs; candidates are then checked against the threshold.
_FAVOUR_RECALL = (0.1, 0.9)


@dataclass
class Duplicates:
    kept: list[int] = field(default_factory=list)  # indexes of pairs to keep, in input order
    # index of a dropped pair -> (index of the kept pair it repeats, "exact" | "near question" | "near pair")
    dropped: dict[int, tuple[int, str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, why in self.dropped.values():
            counts[why] = counts.get(why, 0) + 1
        return counts


def find_duplicates(pairs: Sequence[tuple[str, str]], threshold: float = 0.8, num_perm: int = 64) -> Duplicates:
    """Group `pairs` of (question, answer); the first pair of each group is kept."""
    from datasketch import MinHash, MinHashLSH

    keys = [_key(question) for question, _ in pairs]
    # crc32 instead of datasketch's default sha1: 4x faster, and good enough to spread shingles.
    question_hashes = MinHash.bulk([_shingles(k, 2) for k in keys], num_perm=num_perm, hashfunc=zlib.crc32)
    pairs_text = [f"{k} {_key(a)}" for k, (_, a) in zip(keys, pairs)]
    pair_hashes = MinHash.bulk([_shingles(t, 3) for t in pairs_text], num_perm=num_perm, hashfunc=zlib.crc32)
    near_question = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_FAVOUR_RECALL)
    near_pair = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_FAVOUR_RECALL)
    first_of: dict[str, int] = {}
    result = Duplicates()

    def similar(lsh: MinHashLSH, hashes: list) -> int | None:
        matches = [i for i in lsh.query(hashes[index]) if hashes[i].jaccard(hashes[index]) >= threshold]
        return min(matches) if matches else None

    for index, key in enumerate(keys):
        if key in first_of:
            result.dropped[index] = (first_of[key], "exact")
        elif (match := similar(near_question, question_hashes)) is not None:
            result.dropped[index] = (match, "near question")
        elif (match := similar(near_pair, pair_hashes)) is not None:
            result.dropped[index] = (match, "near pair")
        else:
            first_of[key] = index
            near_question.insert(index, question_hashes[index])
            near_pair.insert(index, pair_hashes[index])
            result.kept.append(index)
    return result


def _key(text: str) -> str:
    """Case, punctuation, look-alike characters and spacing do not make a question new."""
    folded = unicodedata.normalize("NFKC", text.translate(LOOKALIKES)).casefold()
    return " ".join(_PUNCT.sub(" ", folded).split())


def _shingles(key: str, n: int) -> list[bytes]:
    words = key.split()
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)] or [key]
    return [g.encode("utf-8") for g in grams]
