"""Reading the dataset into TRL rows: the records are validated, and a bad line is one clear error."""

from __future__ import annotations

import pytest

from docpipe.contracts import PreferencePair, TrainingRecord
from docpipe.layout import DatasetLayout
from docpipe.store import read_records, write_jsonl
from tests.trainers.tiny_model import tiny_dataset
from trainers import data


def test_records_become_trl_rows(tmp_path):
    folder = DatasetLayout(tiny_dataset(tmp_path / "dataset", pairs=4))
    rows = data.load(folder, tmp_path, with_dpo=True)
    record = read_records(folder.train, TrainingRecord)[0]
    messages = [m.model_dump() for m in record.messages]
    assert rows.train[0] == {"prompt": messages[:2], "completion": messages[2:]}
    preference = read_records(folder.dpo, PreferencePair)[0]
    assert rows.dpo[0] == {key: [m.model_dump() for m in getattr(preference, key)] for key in ("prompt", "chosen", "rejected")}


def test_text_with_unicode_line_separators_is_one_record(tmp_path):
    """A quote holding U+2028 (JSON leaves it unescaped) was cut in two by str.splitlines(): "line 2 is not JSON"."""
    folder = DatasetLayout(tiny_dataset(tmp_path / "dataset", pairs=4))
    records = read_records(folder.train, TrainingRecord)
    odd = records[0].model_copy(update={"answer": "Ten\u2028litres\x85a minute."})
    write_jsonl(folder.train, [odd, *records[1:]])
    assert len(data.load(folder, tmp_path, with_dpo=False).train) == 4


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("train", '{"id": "p9", "messages": []}', "train.jsonl line 2 is not a training record (question: Field required)"),
        (
            "dpo",
            '{"id": "p9", "prompt": [], "chosen": [], "rejected": [], "rejected_kind": "x"}',
            "dpo.jsonl line 2 is not a preference pair (prompt: List should have at least 1 item after validation, not 0)",
        ),
    ],
)
def test_a_bad_record_is_one_line_naming_the_file_and_line(tmp_path, name, line, message):
    folder = DatasetLayout(tiny_dataset(tmp_path / "dataset", pairs=4))
    path = tmp_path / "dataset" / f"{name}.jsonl"
    first = path.read_text(encoding="utf-8").splitlines()[0]
    path.write_text(f"{first}\n{line}\n", encoding="utf-8")
    with pytest.raises(data.DatasetError) as caught:
        data.load(folder, tmp_path, with_dpo=True)
    text = str(caught.value)
    assert message in text and text.endswith(f"run `docpipe generate --out {tmp_path}` again") and "\n" not in text
