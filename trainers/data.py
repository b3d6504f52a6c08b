"""Read the dataset `docpipe generate` wrote into the rows trainers take.

SFT rows are TRL's prompt/completion pairs of chat messages (system + user -> assistant), so
the loss falls on the assistant's tokens only, whatever the chat template; DPO rows are TRL's
conversational preference format, as dpo.jsonl already holds them.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from docpipe.contracts import Message, PreferencePair, TrainingRecord
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.layout import DatasetLayout
from docpipe.store import M, RecordError, parse_records


class DatasetError(DocpipeError, ValueError):
    """The dataset is missing or unreadable; the message says what to run."""

    stage = "train"
    kind = ErrorKind.missing_input


@dataclass(frozen=True)
class TrainData:
    train: list[dict]
    eval: list[dict]
    dpo: list[dict]
    sha256: str  # of the files read: a changed dataset is a new run
    wordings: dict[str, int] = field(default_factory=dict)  # fact id -> its Q&A examples in train
    kinds: dict[str, int] = field(default_factory=dict)  # training examples per kind (qa, rehearsal, refusal)
    chars: int = 0  # of every training example's messages: what the epochs are planned with


def load(folder: DatasetLayout, out_dir: Path, *, with_dpo: bool) -> TrainData:
    """The SFT train/held-out rows (and the DPO rows when asked) from the dataset folder."""
    digest = hashlib.sha256()
    records = _read(folder.train, TrainingRecord, out_dir, digest)
    train = [_sft_row(r) for r in records]
    held_out = [_sft_row(r) for r in _read(folder.eval, TrainingRecord, out_dir, digest)]
    dpo = [_dpo_row(r) for r in _read(folder.dpo, PreferencePair, out_dir, digest)] if with_dpo else []
    if not train:
        raise DatasetError(
            f"{folder.train} has no pairs: run `docpipe generate --out {out_dir}` on documents with text", kind=ErrorKind.empty_dataset
        )
    if with_dpo and not dpo:
        raise DatasetError(
            f"{folder.dpo} has no preference pairs: run `docpipe generate` with generate.dpo: true", kind=ErrorKind.empty_dataset
        )
    wordings = Counter(r.fact_id for r in records if r.kind == "qa" and r.fact_id)
    chars = sum(len(m.content) for r in records for m in r.messages)
    return TrainData(train, held_out, dpo, digest.hexdigest(), dict(wordings), dict(Counter(r.kind for r in records)), chars)


def sample(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """At most `limit` rows, the same ones every time for the same seed."""
    if limit is None or len(rows) <= limit:
        return rows
    return random.Random(seed).sample(rows, limit)


def _read(path: Path, record: type[M], out_dir: Path, digest) -> list[M]:
    """The file's records, validated; its bytes go into `digest`."""
    if not path.is_file():
        raise DatasetError(f"no {path}: run `docpipe generate --out {out_dir}` first")
    data = path.read_bytes()
    digest.update(path.name.encode() + b"\0" + data)
    try:
        # "\n" only: str.splitlines() also breaks at U+2028 and U+0085, which JSON strings may hold unescaped
        return list(parse_records(data.decode("utf-8").split("\n"), record))
    except RecordError as exc:
        raise DatasetError(f"{path} {exc}: run `docpipe generate --out {out_dir}` again", kind=ErrorKind.damaged) from None
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text: run `docpipe generate --out {out_dir}` again", kind=ErrorKind.damaged) from None


def _chat(messages: list[Message]) -> list[dict]:
    return [m.model_dump() for m in messages]


def _sft_row(record: TrainingRecord) -> dict:
    return {"prompt": _chat(record.messages[:-1]), "completion": _chat(record.messages[-1:])}


def _dpo_row(record: PreferencePair) -> dict:
    return {"prompt": _chat(record.prompt), "chosen": _chat(record.chosen), "rejected": _chat(record.rejected)}
