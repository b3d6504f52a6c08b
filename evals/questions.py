"""The question sets `docpipe eval` asks, as data: each question keeps its reference answer, its source
(document, page, quote) and the set it came from.

- seen: a fixed sample of training questions, asked as trained;
- rephrased: trained facts asked in words never trained on (dataset/probes_paraphrase.jsonl);
- unseen: facts whose chunk was trained on but whose question never was (dataset/eval.jsonl);
- out_of_corpus: questions the documents do not answer (dataset/probes_abstain.jsonl);
- user: the user's own file (`--questions`: JSONL or CSV with question, answer and an optional document).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from docpipe.config import EvalConfig
from docpipe.contracts import EvalQuestion, Probe, QuestionSet, TrainingRecord
from docpipe.errors import ErrorKind
from docpipe.layout import DatasetLayout
from docpipe.runtime.chat_format import ABSTAIN_ANSWER
from docpipe.store import RecordError, read_records, stable_hash
from evals import EvalError

SETS: tuple[QuestionSet, ...] = ("seen", "rephrased", "unseen", "out_of_corpus", "user")
_USER_COLUMNS = "question, answer (or reference) and optionally document"


def question_sets(dataset: DatasetLayout, cfg: EvalConfig, user_file: Path | None = None) -> dict[str, list[EvalQuestion]]:
    """Every set's questions, each a seeded sample of at most `cfg.max_questions_per_set` (the same every time)."""
    train = [r for r in _read(dataset.train, TrainingRecord) if r.kind == "qa"]  # not the rehearsed passages and refusals
    sets = {
        "seen": [_from_record(r, "seen") for r in _sample(train, cfg.seen_questions, cfg.seed)],
        "rephrased": [_from_probe(p) for p in _read(dataset.probes_paraphrase, Probe)],
        "unseen": [_from_record(r, "unseen") for r in _read(dataset.eval, TrainingRecord)],
        "out_of_corpus": [_from_probe(p) for p in _read(dataset.probes_abstain, Probe)],
        "user": load_user_questions(user_file) if user_file else [],
    }
    return {name: _sample(questions, cfg.max_questions_per_set, cfg.seed) for name, questions in sets.items()}


def load_user_questions(path: Path) -> list[EvalQuestion]:
    """The user's questions: JSONL ({"question", "answer", "document"}) or CSV with those columns.

    Raises:
        EvalError: the file is missing, or a row lacks a question or an answer; the message names the row.
    """
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"no questions file at {path}", kind=ErrorKind.missing_input)
    rows = _csv_rows(path) if path.suffix.lower() == ".csv" else _jsonl_rows(path)
    questions = []
    for number, row in rows:
        question = str(row.get("question") or "").strip()
        reference = str(row.get("answer") or row.get("reference") or "").strip()
        if not question or not reference:
            missing = "question" if not question else "answer"
            raise EvalError(f"{path} row {number} has no {missing}: each row needs {_USER_COLUMNS}")
        document = str(row.get("document") or "").strip() or None
        questions.append(EvalQuestion(id=_id("user", question), set="user", question=question, reference=reference, path=document))
    if not questions:
        raise EvalError(f"{path} holds no questions: each row needs {_USER_COLUMNS}")
    return questions


def _jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path} row {number} is not JSON ({exc.msg}): each line is an object with {_USER_COLUMNS}") from None
        if not isinstance(row, dict):
            raise EvalError(f"{path} row {number} is not an object: each line is an object with {_USER_COLUMNS}")
        rows.append((number, row))
    return rows


def _csv_rows(path: Path) -> list[tuple[int, dict]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "question" not in [f.strip().lower() for f in reader.fieldnames]:
            raise EvalError(f"{path} has no 'question' column: its header must name {_USER_COLUMNS}")
        # row numbers as a spreadsheet shows them: the header is row 1
        return [(number, {(k or "").strip().lower(): v for k, v in row.items()}) for number, row in enumerate(reader, 2)]


def _read(path: Path, record: type) -> list:
    if not path.is_file():
        raise EvalError(f"no {path}: run `docpipe generate` first", kind=ErrorKind.missing_input)
    try:
        return read_records(path, record)
    except RecordError as exc:
        raise EvalError(f"{path} {exc}: run `docpipe generate` again", kind=ErrorKind.damaged) from None


def _from_record(record: TrainingRecord, name: QuestionSet) -> EvalQuestion:
    c = record.citation
    return EvalQuestion(
        id=_id(name, record.question, record.id),
        set=name,
        question=record.question,
        reference=record.answer,
        path=c.path,
        page=c.page,
        quote=c.quote,
        source_id=record.id,
    )


def _from_probe(probe: Probe) -> EvalQuestion:
    if probe.kind == "abstain":
        return EvalQuestion(id=_id("out_of_corpus", probe.question), set="out_of_corpus", question=probe.question, reference=ABSTAIN_ANSWER)
    c = probe.citation
    return EvalQuestion(
        id=_id("rephrased", probe.question, probe.source_id),
        set="rephrased",
        question=probe.question,
        reference=probe.answer,
        path=c.path,
        page=c.page,
        quote=c.quote,
        source_id=probe.source_id,
    )


def _id(name: str, question: str, source: str | None = None) -> str:
    return stable_hash(name, question, source)[:16]


def _sample(items: list, limit: int, seed: int) -> list:
    """At most `limit` items, the same ones every time for the same seed, in their original order."""
    if len(items) <= limit:
        return items
    keep = set(random.Random(seed).sample(range(len(items)), limit))
    return [item for i, item in enumerate(items) if i in keep]
