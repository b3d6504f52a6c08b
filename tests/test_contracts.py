"""The records stages hand each other through files: they round-trip through JSONL with the keys
readers know, a bad line is one clear error, and files written by the previous version still load."""

from __future__ import annotations

import json

import pytest

from docpipe.config import TrainConfig
from docpipe.contracts import (
    Citation,
    DatasetReport,
    PreferencePair,
    Probe,
    QAPair,
    TrainingRecord,
    TrainResult,
    TrainSettings,
)
from docpipe.runtime.chat_format import ABSTAIN_ANSWER, render_answer, to_messages
from docpipe.store import RecordError, read_records, write_jsonl

CITATION = Citation(path="guide.pdf", doc_id="d1", page=3, quote="The pump runs at 40 litres per minute.", start=10, end=48)
PAIR = QAPair(
    id="p1",
    question="How fast does the pump run?",
    answer="40 litres per minute.",
    citation=CITATION,
    chunk_id="c1",
    section=["Pumps"],
    tier="structured",
    producer="fake",
)


def _record(answer: str = PAIR.answer) -> TrainingRecord:
    return TrainingRecord(**{**dict(PAIR), "answer": answer}, messages=to_messages(PAIR.question, render_answer(answer, CITATION)))


def test_training_records_round_trip_with_the_pair_keys_then_messages(tmp_path):
    path = tmp_path / "train.jsonl"
    records = [_record(), _record("Forty litres\u2028per minute.\x85")]  # line separators a str.splitlines() would cut at
    write_jsonl(path, records)
    assert read_records(path, TrainingRecord) == records
    line = json.loads(path.read_text(encoding="utf-8").split("\n")[0])
    assert list(line) == [*QAPair.model_fields, "kind", "fact_id", "messages"]
    assert line["messages"][2] == {"role": "assistant", "content": "40 litres per minute.\n\nSource: guide.pdf, p. 3"}


def test_preference_pairs_and_probes_round_trip(tmp_path):
    preference = PreferencePair(
        id="p1",
        prompt=to_messages(PAIR.question, "")[:2],
        chosen=[{"role": "assistant", "content": render_answer(PAIR.answer, CITATION)}],
        rejected=[{"role": "assistant", "content": PAIR.answer}],
        rejected_kind="uncited answer",
    )
    write_jsonl(tmp_path / "dpo.jsonl", [preference])
    assert read_records(tmp_path / "dpo.jsonl", PreferencePair) == [preference]

    abstain = Probe(
        id="a1",
        kind="abstain",
        question="Who painted the Sistine Chapel ceiling?",
        answer=ABSTAIN_ANSWER,
        messages=to_messages("Who painted the Sistine Chapel ceiling?", ABSTAIN_ANSWER),
    )
    paraphrase = Probe(
        id="r1",
        kind="paraphrase",
        source_id=PAIR.id,
        question="At what rate does the pump run?",
        original_question=PAIR.question,
        answer=PAIR.answer,
        citation=CITATION,
        chunk_id=PAIR.chunk_id,
        messages=to_messages("At what rate does the pump run?", render_answer(PAIR.answer, CITATION)),
    )
    write_jsonl(tmp_path / "probes.jsonl", [abstain, paraphrase])
    assert read_records(tmp_path / "probes.jsonl", Probe) == [abstain, paraphrase]
    lines = [json.loads(line) for line in (tmp_path / "probes.jsonl").read_text().splitlines()]
    assert list(lines[0]) == ["id", "kind", "question", "answer", "messages"]  # no empty source fields on an abstention
    assert list(lines[1]) == ["id", "kind", "source_id", "question", "original_question", "answer", "citation", "chunk_id", "messages"]


def test_a_probe_has_a_source_pair_exactly_when_it_is_a_paraphrase():
    messages = to_messages("q?", "a")
    with pytest.raises(ValueError, match="a paraphrase probe needs source_id, original_question, citation, chunk_id"):
        Probe(id="x", kind="paraphrase", question="q?", answer="a", messages=messages)
    with pytest.raises(ValueError, match="an abstention probe has no source pair, yet gives source_id"):
        Probe(id="x", kind="abstain", source_id="p1", question="q?", answer="a", messages=messages)


def test_a_bad_line_is_one_error_naming_the_line_and_the_problem(tmp_path):
    path = tmp_path / "train.jsonl"
    good = _record().model_dump_json()
    no_answer = json.loads(good) | {"messages": json.loads(good)["messages"][:2]}
    cases = [
        (json.dumps(no_answer), "line 3 is not a training record (messages must end with the assistant's message, not the user's)"),
        (json.dumps({"id": "p1", "messages": []}), "line 3 is not a training record (question: Field required)"),
        ('{"id": "p1", "messages": [', "line 3 is not JSON (Expecting value)"),  # cut by a crash
    ]
    for bad, message in cases:
        path.write_text(f"{good}\n\n{bad}\n", encoding="utf-8")  # a blank line still counts
        with pytest.raises(RecordError) as caught:
            read_records(path, TrainingRecord)
        assert str(caught.value) == message and caught.value.line == 3
    assert read_records(path, TrainingRecord, limit=1) == [_record()]  # only the lines asked for are read


def test_preference_turns_are_checked():
    with pytest.raises(ValueError, match="prompt must end with the user's message"):
        PreferencePair(
            id="p",
            prompt=[{"role": "system", "content": "s"}],
            chosen=[{"role": "assistant", "content": "a"}],
            rejected=[{"role": "assistant", "content": "b"}],
            rejected_kind="wrong source",
        )
    with pytest.raises(ValueError, match="chosen must hold only the assistant's answer"):
        PreferencePair(
            id="p",
            prompt=[{"role": "user", "content": "q"}],
            chosen=[{"role": "user", "content": "a"}],
            rejected=[{"role": "assistant", "content": "b"}],
            rejected_kind="wrong source",
        )


# runs/<id>/train_result.json as the version before TrainSettings wrote it (config was a plain dict).
PREVIOUS_TRAIN_RESULT = {
    "run_id": "0a1b2c3d4e5f",
    "backend": "hf",
    "device": "cpu",
    "dispatch": "no CUDA GPU: hf (transformers + peft)",
    "fallbacks": [],
    "base_model": "smollm2-135m-instruct",
    "base_path": "/out/cache/base_models/smollm2",
    "base_source": "packaged gguf",
    "base_sha256": "ab" * 32,
    "dequantised_from": "Q8_0",
    "base_license": "apache-2.0",
    "chat_template": "{{ messages }}",
    "adapter": "/out/runs/0a1b2c3d4e5f/adapter",
    "dataset_sha256": "cd" * 32,
    "sft": {
        "stage": "sft",
        "backend": "hf on cpu",
        "adapter": "/out/runs/0a1b2c3d4e5f/sft/hf-cpu/best",
        "steps": 2,
        "epochs": 0.5,
        "train_loss": [{"step": 1, "epoch": 0.25, "loss": 3.2}],
        "eval_loss": [],
        "best_eval_loss": None,
        "best_step": None,
        "stopped_early": False,
        "resumed_from_step": None,
        "tokens": 900,
        "tokens_per_s": 450.0,
        "wall_s": 2.0,
        "peak_memory_mb": 800.0,
    },
    "dpo": None,
    "threads": 2,
    "wall_s": 3.1,
    "peak_memory_mb": 800.0,
    "config": {
        "base_model": "smollm2-135m-instruct",
        "backend": "hf",
        "device": "cpu",
        "epochs": 5,
        "max_steps": 2,
        "batch_size": 4,
        "learning_rate": 0.0002,
        "lora_rank": 16,
        "lora_alpha": 32.0,
        "lora_dropout": 0.0,
        "qlora": False,
        "max_seq_tokens": 1024,
        "evals_per_epoch": 2,
        "eval_max_pairs": 256,
        "early_stopping_patience": 2,
        "checkpoint_minutes": 5.0,
        "threads": 2,
        "seed": 0,
        "dpo": False,
        "dpo_beta": 0.1,
        "dpo_learning_rate": 2e-05,
        "dpo_epochs": 1.0,
        "dpo_max_pairs": None,
        "base_path": "/out/cache/base_models/smollm2",
        "base_sha256": "ab" * 32,
        "dequantised_from": "Q8_0",
    },
    "docpipe_version": "0.1.0",
}


def test_a_train_result_from_the_previous_version_loads_and_writes_back_the_same_settings():
    result = TrainResult.model_validate_json(json.dumps(PREVIOUS_TRAIN_RESULT))
    assert isinstance(result.config, TrainSettings) and result.config.max_seq_tokens == 1024 and result.config.device == "cpu"
    written = result.model_dump(mode="json")["config"]
    # what the previous version wrote comes back unchanged; the settings added since take their defaults
    assert {k: v for k, v in written.items() if k in PREVIOUS_TRAIN_RESULT["config"]} == PREVIOUS_TRAIN_RESULT["config"]
    assert {k: written[k] for k in written if k not in PREVIOUS_TRAIN_RESULT["config"]} == {
        "target_exposures": 12,
        "time_budget_minutes": None,
    }


def test_train_settings_record_every_train_config_field():
    """A TrainConfig field missing here would fail every training run when its record is written."""
    assert set(TrainConfig.model_fields) <= set(TrainSettings.model_fields)
    assert list(TrainSettings.model_fields)[: len(TrainConfig.model_fields)] == list(TrainConfig.model_fields)  # the file's key order
    assert all(field.description for field in TrainSettings.model_fields.values())


def test_a_dataset_report_from_the_previous_version_loads():
    report = {
        "documents": 1,
        "documents_with_text": 1,
        "documents_covered": 1,
        "uncovered": {},
        "chunks": 2,
        "chunks_with_content": 2,
        "chunks_covered": 2,
        "funnel": {"candidates": 3},
        "rejections": {},
        "tiers": {"heuristic": {"candidates": 3, "accepted": 3}},
        "splits": {"train": 2, "eval": 1},
        "seconds": 1.5,
        "llm": {
            "model": "openai/gpt-4o-mini",
            "agent": {"chunks by structured": 2, "model never answered usefully": "HTTP 401"},
            "trusted": True,
            "usage": {
                "QAWriter": {
                    "calls": 2,
                    "cache_hits": 0,
                    "retries": 1,
                    "failures": 0,
                    "prompt_tokens": 900,
                    "completion_tokens": 200,
                    "cost_usd": 0,
                }
            },
        },
    }
    loaded = DatasetReport.model_validate_json(json.dumps(report))
    assert loaded.llm.usage["QAWriter"].retries == 1 and loaded.llm.agent["model never answered usefully"] == "HTTP 401"
    older = {**report, "llm": {"model": "none (extractive generator)", "agent": {"chunks by heuristic": 2}}}  # before `trusted` and `usage`
    assert DatasetReport.model_validate(older).llm.trusted is True
