"""Read the dataset `docpipe generate` wrote into the rows trainers take.

SFT rows are TRL's prompt/completion pairs of chat messages (system + user -> assistant), so
the loss falls on the assistant's tokens only, whatever the chat template; DPO rows are TRL's
conversational preference format, as dpo.jsonl already holds them.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from docpipe.errors import DocpipeError, ErrorKind
from docpipe.layout import DatasetLayout


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


def load(folder: DatasetLayout, out_dir: Path, *, with_dpo: bool) -> TrainData:
    """The SFT train/held-out rows (and the DPO rows when asked) from the dataset folder."""
    digest = hashlib.sha256()
    tables = {path: _read(path, out_dir, digest) for path in [folder.train, folder.eval] + ([folder.dpo] if with_dpo else [])}
    train = [_sft_row(r, folder.train, i) for i, r in enumerate(tables[folder.train], 1)]
    if not train:
        raise DatasetError(f"{folder.train} has no pairs: run `docpipe generate --out {out_dir}` on documents with text",
                           kind=ErrorKind.empty_dataset)
    held_out = [_sft_row(r, folder.eval, i) for i, r in enumerate(tables[folder.eval], 1)]
    dpo = [_dpo_row(r, folder.dpo, i) for i, r in enumerate(tables.get(folder.dpo, []), 1)]
    if with_dpo and not dpo:
        raise DatasetError(f"{folder.dpo} has no preference pairs: run `docpipe generate` with generate.dpo: true",
                           kind=ErrorKind.empty_dataset)
    return TrainData(train, held_out, dpo, digest.hexdigest())


def sample(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    """At most `limit` rows, the same ones every time for the same seed."""
    if limit is None or len(rows) <= limit:
        return rows
    return random.Random(seed).sample(rows, limit)


def _read(path: Path, out_dir: Path, digest) -> list[dict]:
    if not path.is_file():
        raise DatasetError(f"no {path}: run `docpipe generate --out {out_dir}` first")
    data = path.read_bytes()
    digest.update(path.name.encode() + b"\0" + data)
    rows = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path} line {number} is not JSON ({exc.msg}): run `docpipe generate --out {out_dir}` again",
                               kind=ErrorKind.damaged) from None
    return rows


def _sft_row(record: dict, path: Path, number: int) -> dict:
    messages = record.get("messages")
    if not (isinstance(messages, list) and len(messages) >= 2 and messages[-1].get("role") == "assistant"):
        raise DatasetError(f"{path} record {number} has no chat `messages` ending with the assistant's answer")
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def _dpo_row(record: dict, path: Path, number: int) -> dict:
    if not all(isinstance(record.get(key), list) and record[key] for key in ("prompt", "chosen", "rejected")):
        raise DatasetError(f"{path} record {number} lacks `prompt`, `chosen` or `rejected` messages")
    return {key: record[key] for key in ("prompt", "chosen", "rejected")}
