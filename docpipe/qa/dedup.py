"""Find duplicate Q&A pairs: exact (normalised question) and near (MinHash LSH on the question,
and on question + answer), keeping the first of each group.

Near-duplicates are what a generator produces when it asks the same thing twice in other
words ("When does the room open?" / "When does the reading room open?"); left in, they
inflate the dataset and leak between train and eval.

Signatures for all texts are computed at once with numpy (one hash per word n-gram, one
vectorised permutation per signature row), since per-object MinHashes cost 18 s per 100k pairs;
LSH candidates are then checked against the threshold on their exact Jaccard similarity.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

try:
    import numpy as np
except ImportError as error:  # pragma: no cover - numpy comes with the dataset extra
    raise ImportError("near-duplicate detection needs numpy: pip install 'docpipe[dataset]'") from error

from docpipe.qa.citation import LOOKALIKES

_PUNCT = re.compile(r"[^\w\s]")
# LSH bands tuned to miss few true pairs (false-positive vs false-negative weight, as datasketch's
# MinHashLSH `weights`); a false candidate only costs one exact Jaccard check.
_FAVOUR_RECALL = (0.1, 0.9)
_SEED = 20_240_607  # fixed, so the same pairs always give the same groups
_CHUNK = 4096  # shingles per vectorised block: keeps a block of num_perm rows in cache
_U64 = np.uint64


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
    """Group `pairs` of (question, answer); the first pair of each group is kept.

    Args:
        pairs: (question, answer) texts, in the order that decides which copy is kept.
        threshold: Jaccard similarity of word shingles (question bigrams, question + answer
            trigrams) from which two pairs are near-duplicates.
        num_perm: MinHash signature length; more finds more candidates near the threshold.

    Returns:
        The kept indexes, and for each dropped index the kept pair it repeats and why.
    """
    keys = [_key(question) for question, _ in pairs]
    question_words = [k.split() or [""] for k in keys]
    pair_words = [q + _key(a).split() for q, (_, a) in zip(question_words, pairs)]
    near_question = _NearIndex(question_words, 2, threshold, num_perm)
    near_pair = _NearIndex(pair_words, 3, threshold, num_perm)
    first_of: dict[str, int] = {}
    result = Duplicates()
    for index, key in enumerate(keys):
        if key in first_of:
            result.dropped[index] = (first_of[key], "exact")
        elif (match := near_question.match(index)) is not None:
            result.dropped[index] = (match, "near question")
        elif (match := near_pair.match(index)) is not None:
            result.dropped[index] = (match, "near pair")
        else:
            first_of[key] = index
            near_question.add(index)
            near_pair.add(index)
            result.kept.append(index)
    return result


class _NearIndex:
    """MinHash LSH over the word n-grams of many texts, answering which kept text is the
    earliest whose Jaccard similarity to a given one reaches the threshold."""

    def __init__(self, texts: list[list[str]], n: int, threshold: float, num_perm: int):
        self._threshold = threshold
        self._shingles, self._starts = _shingle_hashes(texts, n)
        signatures = _signatures(self._shingles, self._starts, num_perm)
        self._bands = _shared_band_keys(signatures, *_band_shape(threshold, num_perm))
        self._buckets: dict[int, list[int]] = {}
        self._sets: dict[int, set[int]] = {}

    def add(self, index: int) -> None:
        for key in self._bands.get(index, ()):
            self._buckets.setdefault(key, []).append(index)

    def match(self, index: int) -> int | None:
        keys = self._bands.get(index)
        if not keys:  # no band in common with any other text
            return None
        candidates = {kept for key in keys for kept in self._buckets.get(key, ())}
        return next((kept for kept in sorted(candidates) if self._jaccard(index, kept) >= self._threshold), None)

    def _jaccard(self, a: int, b: int) -> float:
        first, second = self._set(a), self._set(b)
        common = len(first & second)
        return common / (len(first) + len(second) - common)

    def _set(self, index: int) -> set[int]:
        if index not in self._sets:
            self._sets[index] = set(self._shingles[self._starts[index] : self._starts[index + 1]].tolist())
        return self._sets[index]


def _key(text: str) -> str:
    """Case, punctuation, look-alike characters and spacing do not make a question new."""
    folded = unicodedata.normalize("NFKC", text.translate(LOOKALIKES)).casefold()
    return " ".join(_PUNCT.sub(" ", folded).split())


def _shingle_hashes(texts: list[list[str]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of each text's word n-grams (the whole text when shorter), all texts end to
    end, and where each text's hashes start (one more entry: the end)."""
    vocab: dict[str, int] = {}
    # setdefault with a counter gives each distinct word one id, the count at its first sight.
    ids = np.fromiter(map(vocab.setdefault, itertools.chain.from_iterable(texts), itertools.count()), np.uint64)
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    ends = np.repeat(np.cumsum(lengths), lengths)
    position = np.arange(len(ids))
    words = _mix(ids)
    hashes = np.zeros(len(ids), _U64)
    for offset, factor in enumerate(_odd_numbers(n, _SEED)):
        term = words[offset:] * factor
        term[position[: len(term)] + offset >= ends[: len(term)]] = 0  # past the end of its text
        hashes[: len(term)] += term
    starts_of_word = np.repeat(np.cumsum(lengths) - lengths, lengths)
    valid = (position + n <= ends) | (position == starts_of_word)
    per_text = np.maximum(lengths - n + 1, 1)
    return _mix(hashes[valid]), np.concatenate(([0], np.cumsum(per_text)))


def _signatures(shingles: np.ndarray, starts: np.ndarray, num_perm: int) -> np.ndarray:
    """MinHash signatures, one column per text: the minimum over its shingles of num_perm
    multiply-shift hashes, computed a block of texts at a time."""
    multipliers = _odd_numbers(num_perm, _SEED + 1)[:, None]
    offsets = _odd_numbers(num_perm, _SEED + 2)[:, None]
    texts = len(starts) - 1
    signatures = np.empty((num_perm, texts), np.uint32)
    first = 0
    while first < texts:
        last = max(int(np.searchsorted(starts, starts[first] + _CHUNK, "right")) - 1, first + 1)
        block = np.multiply.outer(multipliers[:, 0], shingles[starts[first] : starts[last]])
        block += offsets
        block >>= _U64(32)
        signatures[:, first:last] = np.minimum.reduceat(block, starts[first:last] - starts[first], axis=1)
        first = last
    return signatures


def _shared_band_keys(signatures: np.ndarray, bands: int, rows: int) -> dict[int, list[int]]:
    """One 64-bit key per LSH band for each text that shares a band with another text; the
    rest can match nothing, so they stay out of the index."""
    texts = signatures.shape[1]
    grid = signatures[: bands * rows].astype(_U64).reshape(bands, rows, texts)
    keys = _mix(np.einsum("brt,r->bt", grid, _odd_numbers(rows, _SEED + 3)) + np.arange(bands, dtype=_U64)[:, None])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sharing = np.flatnonzero((counts[inverse.reshape(keys.shape)] > 1).any(axis=0))
    return dict(zip(sharing.tolist(), keys[:, sharing].T.tolist()))


@lru_cache(maxsize=32)
def _band_shape(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising datasketch's weighted sum of the false-positive and
    false-negative areas under the LSH S-curve 1 - (1 - s**rows)**bands."""
    false_positive_weight, false_negative_weight = _FAVOUR_RECALL
    below = (np.arange(1000) + 0.5) / 1000 * threshold
    above = threshold + (np.arange(1000) + 0.5) / 1000 * (1 - threshold)

    def cost(bands: int, rows: int) -> float:
        false_positive = (1 - (1 - below**rows) ** bands).mean() * threshold
        false_negative = ((1 - above**rows) ** bands).mean() * (1 - threshold)
        return false_positive_weight * false_positive + false_negative_weight * false_negative

    shapes = [(bands, rows) for bands in range(1, num_perm + 1) for rows in range(1, num_perm // bands + 1)]
    return min(shapes, key=lambda shape: cost(*shape))


def _odd_numbers(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, count, dtype=_U64, endpoint=False) | _U64(1)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole 64-bit word."""
    values = values ^ (values >> _U64(30))
    values *= _U64(0xBF58476D1CE4E5B9)
    values ^= values >> _U64(27)
    values *= _U64(0x94D049BB133111EB)
    return values ^ (values >> _U64(31))
