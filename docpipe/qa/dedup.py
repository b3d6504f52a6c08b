"""Find duplicate Q&A pairs: exact (normalised question) and near (MinHash LSH on the question,
and on question + answer), keeping the first of each group.

Near-duplicates are what a generator produces when it asks the same thing twice in other
words ("When does the room open?" / "When does the reading room open?"); left in, they
inflate the dataset and leak between train and eval.

MinHash signatures for all texts are computed at once with numpy (one hash per word n-gram, one
vectorised permutation per signature row): datasketch's per-text MinHash objects took 18 s per
100k pairs. LSH candidates far from the threshold on their signatures are skipped; the rest are
judged on their exact Jaccard similarity, so the threshold means what it says.
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
except ImportError:  # pragma: no cover - curate and the modules that import it must load without it
    np = None

from docpipe.runtime.citation import LOOKALIKES

_PUNCT = re.compile(r"[^\w\s]")
# LSH bands tuned to miss few true pairs: datasketch's MinHashLSH `weights` for the false-positive
# and false-negative areas. Leaning further to recall, (0.05, 0.95) with 64 rows, finds 1 % more of
# the planted repeats in scripts/bench_dataset.py, but 100k questions on one template ("What is
# the X of the Y?") then share buckets of up to 15k texts and take 4x as long.
_FAVOUR_RECALL = (0.1, 0.9)
_SEED = 20_240_607  # fixed, so the same pairs always give the same groups
_CHUNK = 4096  # shingles per vectorised block: keeps a block of num_perm rows in cache
_NO_WORD = 2**63  # stands in for the words of an empty text; word ids count from 0
_ASCII_PUNCT = bytes(32 if _PUNCT.match(chr(code)) else code for code in range(256))  # _PUNCT as a table


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
    if np is None:
        raise ImportError("near-duplicate detection needs numpy: pip install 'docpipe[dataset]'")
    keys = [_key(question) for question, _ in pairs]
    ids, lengths = _word_ids(keys + [_key(answer) for _, answer in pairs])
    split = int(lengths[: len(keys)].sum())
    question, answer = (ids[:split], lengths[: len(keys)]), (ids[split:], lengths[len(keys) :])
    near_question = _NearIndex(*question, 2, threshold, num_perm)
    near_pair = _NearIndex(*_join(question, answer), 3, threshold, num_perm)
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

    def __init__(self, ids: np.ndarray, lengths: np.ndarray, n: int, threshold: float, num_perm: int):
        self._threshold = threshold
        # The share of rows on which two signatures agree estimates their Jaccard similarity; 4
        # standard deviations below the threshold, a pair at the threshold is lost 1 in 30,000.
        self._least_agreement = num_perm * threshold - 4 * (num_perm * threshold * (1 - threshold)) ** 0.5
        self._shingles, self._starts = _shingle_hashes(ids, lengths, n)
        signatures = _signatures(self._shingles, self._starts, num_perm)
        self._bands = _shared_band_keys(signatures, *_band_shape(threshold, num_perm))
        self._signatures = np.ascontiguousarray(signatures.T)  # one row per text
        self._buckets: dict[int, list[int]] = {}  # band key -> kept texts, in input order
        self._sets: dict[int, set[int]] = {}

    def add(self, index: int) -> None:
        for key in self._bands.get(index, ()):
            self._buckets.setdefault(key, []).append(index)

    def match(self, index: int) -> int | None:
        keys = self._bands.get(index)
        candidates = set().union(*(self._buckets.get(key, ()) for key in keys)) if keys else None
        if not candidates:
            return None
        candidates = np.fromiter(candidates, np.int64, len(candidates))
        agreement = np.count_nonzero(self._signatures[candidates] == self._signatures[index], axis=1)
        mine = self._set(index)
        for kept in np.sort(candidates[agreement >= self._least_agreement]).tolist():
            theirs = self._set(kept)
            common = len(mine & theirs)
            if common / (len(mine) + len(theirs) - common) >= self._threshold:
                return kept
        return None

    def _set(self, index: int) -> set[int]:
        if (shingles := self._sets.get(index)) is None:
            shingles = self._sets[index] = set(self._shingles[self._starts[index] : self._starts[index + 1]].tolist())
        return shingles


def _key(text: str) -> str:
    """Case, punctuation, look-alike characters and spacing do not make a question new."""
    if text.isascii():  # the common case, 2.5x faster: no look-alike or compatibility form is ASCII
        spaced = text.lower().encode("ascii").translate(_ASCII_PUNCT).decode("ascii")
    else:
        spaced = _PUNCT.sub(" ", unicodedata.normalize("NFKC", text.translate(LOOKALIKES)).casefold())
    return " ".join(spaced.split())


def _word_ids(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each key's words as integer ids (the same word, the same id), all keys end to end, and
    each key's number of words. Keys are `_key` output: words between single spaces."""
    vocab: dict[str, int] = {}
    # setdefault with a counter gives each distinct word one id: the count at its first sight.
    ids = map(vocab.setdefault, " ".join(keys).split(), itertools.count())
    lengths = [key.count(" ") + 1 if key else 0 for key in keys]
    return np.fromiter(ids, np.uint64), np.array(lengths, np.int64)


def _join(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Text i of `first` followed by text i of `second`, for every i, as (ids, lengths)."""
    lengths = first[1] + second[1]
    starts = np.cumsum(lengths) - lengths
    joined = np.empty(int(lengths.sum()), np.uint64)
    joined[np.repeat(starts, first[1]) + _positions(first[1])] = first[0]
    joined[np.repeat(starts + first[1], second[1]) + _positions(second[1])] = second[0]
    return joined, lengths


def _positions(lengths: np.ndarray) -> np.ndarray:
    """Index of each word within its text."""
    return np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _shingle_hashes(ids: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of each text's word n-grams (the whole text when shorter), all texts end to
    end, and where each text's hashes start (one more entry: the end)."""
    if (empty := lengths == 0).any():  # an empty text is one shingle, the same for all of them
        ids = np.insert(ids, (np.cumsum(lengths) - lengths)[empty], _NO_WORD)
        lengths = np.maximum(lengths, 1)
    position = _positions(lengths)
    left = np.repeat(lengths, lengths) - position  # words from each word to the end of its text
    words = _mix(ids)
    hashes = np.zeros(len(ids), np.uint64)
    for offset, factor in enumerate(_odd_numbers(n, _SEED)):
        term = words[offset:] * factor
        term[left[: len(term)] <= offset] = 0  # that word is in the next text
        hashes[: len(term)] += term
    shingles = hashes[(left >= n) | (position == 0)]
    return _mix(shingles), np.concatenate(([0], np.cumsum(np.maximum(lengths - n + 1, 1))))


def _signatures(shingles: np.ndarray, starts: np.ndarray, num_perm: int) -> np.ndarray:
    """MinHash signatures, one column per text: the minimum over its shingles of num_perm
    multiply-add-shift hashes ((a * x + b) mod 2**64) >> 32, a block of texts at a time."""
    multipliers = _odd_numbers(num_perm, _SEED + 1)
    offsets = _odd_numbers(num_perm, _SEED + 2)[:, None]
    texts = len(starts) - 1
    signatures = np.empty((num_perm, texts), np.uint32)
    first = 0
    while first < texts:
        last = max(int(np.searchsorted(starts, starts[first] + _CHUNK, "right")) - 1, first + 1)
        block = np.multiply.outer(multipliers, shingles[starts[first] : starts[last]])
        block += offsets
        block >>= np.uint64(32)
        signatures[:, first:last] = np.minimum.reduceat(block, starts[first:last] - starts[first], axis=1)
        first = last
    return signatures


def _shared_band_keys(signatures: np.ndarray, bands: int, rows: int) -> dict[int, list[int]]:
    """One 64-bit key per LSH band for each text that shares a band with another text; the
    rest can match nothing, so they stay out of the index."""
    texts = signatures.shape[1]
    grid = signatures[: bands * rows].astype(np.uint64).reshape(bands, rows, texts)
    keys = _mix(np.einsum("brt,r->bt", grid, _odd_numbers(rows, _SEED + 3)) + np.arange(bands, dtype=np.uint64)[:, None])
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
    """Random odd 64-bit numbers: splitmix64's sequence, the same on every platform and numpy."""
    steps = np.arange(1, count + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return _mix(steps + np.uint64(seed)) | np.uint64(1)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole 64-bit word."""
    values = values ^ (values >> np.uint64(30))
    values *= np.uint64(0xBF58476D1CE4E5B9)
    values ^= values >> np.uint64(27)
    values *= np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))
