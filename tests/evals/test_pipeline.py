"""The evaluate stage end to end on a tiny trained model, and the user's question file."""

from __future__ import annotations

import json

import pytest

from docpipe.config import DocpipeConfig, EvalConfig, GenerateConfig, IngestConfig, TrainConfig
from docpipe.contracts import EvalRecord, EvalReport
from docpipe.layout import Layout
from docpipe.runtime.hardware import Hardware
from docpipe.stage import EvalInputs
from docpipe.store import read_records
from evals import EvalError, pipeline
from evals.questions import load_user_questions
from tests.stages import generate_dataset, ingest_folder, train_run
from tests.trainers.tiny_model import build_tiny_model

CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=1)
FACTS = [
    "Pump A runs at 12 litres per minute.",
    "Pump B runs at 30 litres per minute.",
    "The filter of pump A is changed every 90 days.",
    "The plant opened in 1987.",
    "The second hall was built in 2004.",
    "The night shift starts at 22:00.",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An output folder with a real dataset (extractive) and a tiny run trained on it."""
    root = tmp_path_factory.mktemp("eval-run")
    docs = root / "docs"
    docs.mkdir()
    (docs / "plant.md").write_text("# Plant\n\n" + "\n\n".join(FACTS) + "\n")
    out = root / "out"
    cfg = DocpipeConfig(
        ingest=IngestConfig(workers=1),
        generate=GenerateConfig(paraphrase_probes=10, abstention_probes=5),
        train=TrainConfig(base_model=str(build_tiny_model(root / "base")), batch_size=4, max_steps=2, threads=1),
    )
    ingest_folder(docs, out, cfg.ingest)
    generate_dataset(out, cfg)
    train_run(out, cfg, hardware=CPU)
    return out


def _eval(out, **options) -> EvalReport:
    cfg = EvalConfig(threads=1, max_answer_tokens=16, bootstrap_samples=200, **options)
    return pipeline.run(EvalInputs(Layout(out)), cfg)


@pytest.mark.parametrize("engine", ["llama.cpp", "transformers"])
def test_eval_writes_a_report_with_base_and_tuned_on_every_set(trained, engine):
    report = _eval(trained, engine=engine)
    folder = Layout(trained).run(report.run_id)
    assert report.verdict in ("ok", "overfit", "undertrained", "ungrounded", "over-refusing", "insufficient-data") and report.reasons
    assert set(report.models) == {"base", "tuned"} and set(report.sets) == {"base", "tuned"}
    assert {"seen", "rephrased", "out_of_corpus"} <= set(report.questions)  # one section: nothing held out as unseen
    records = read_records(folder.eval_questions, EvalRecord)
    assert len(records) == sum(report.questions.values()) and all(set(r.answers) == {"base", "tuned"} for r in records)
    assert any(c.a == "base" and c.b == "tuned" for c in report.comparisons)
    assert EvalReport.model_validate_json(folder.eval_report.read_text()) == report
    assert folder.eval_markdown.read_text().count(report.verdict.upper()) >= 1
    assert "<html" in folder.eval_html.read_text()
    assert pipeline.is_current(
        EvalInputs(Layout(trained)), EvalConfig(threads=1, max_answer_tokens=16, bootstrap_samples=200, engine=engine)
    )


def test_a_second_eval_repeats_no_answer(trained, monkeypatch):
    _eval(trained, engine="transformers")
    from evals import answering

    def no_generation(*args, **kwargs):
        raise AssertionError("answered again: the cache should hold every answer")

    monkeypatch.setattr(answering.TransformersAnswerer, "answer", no_generation)
    report = _eval(trained, engine="transformers", min_questions=3)  # other thresholds, same answers
    assert report.questions


def test_the_users_questions_are_a_set_and_bad_rows_are_one_clear_line(trained, tmp_path):
    good = tmp_path / "mine.jsonl"
    good.write_text(json.dumps({"question": "How fast does pump B run?", "answer": "30 litres per minute", "document": "plant.md"}) + "\n")
    report = pipeline.run(EvalInputs(Layout(trained), questions=good), EvalConfig(threads=1, max_answer_tokens=16, engine="transformers"))
    assert report.questions["user"] == 1 and report.sets["tuned"]["user"].correct.too_small

    csv = tmp_path / "mine.csv"
    csv.write_text("question,answer,document\nWhen did the plant open?,1987,plant.md\nWhat is the fee?,,\n")
    with pytest.raises(EvalError, match=r"mine.csv row 3 has no answer: each row needs question, answer"):
        load_user_questions(csv)


def test_user_question_files_say_what_is_wrong(tmp_path):
    broken = tmp_path / "q.jsonl"
    broken.write_text('{"question": "ok?", "answer": "yes"}\n{"question": \n')
    with pytest.raises(EvalError, match=r"q.jsonl row 2 is not JSON"):
        load_user_questions(broken)
    no_column = tmp_path / "q.csv"
    no_column.write_text("prompt,answer\nx,y\n")
    with pytest.raises(EvalError, match="has no 'question' column"):
        load_user_questions(no_column)
    with pytest.raises(EvalError, match="no questions file"):
        load_user_questions(tmp_path / "missing.jsonl")


def test_eval_before_training_says_what_to_run(tmp_path):
    with pytest.raises(EvalError, match="docpipe train"):
        pipeline.run(EvalInputs(Layout(tmp_path)), EvalConfig())


def test_the_eval_command_before_training_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from docpipe.cli import app

    result = CliRunner().invoke(app, ["eval", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "run `docpipe train --out" in result.output and result.output.count("\n") == 1


def test_the_judge_scores_every_answer_through_the_gateway_and_falls_back_on_junk(trained, monkeypatch):
    from docpipe import llm
    from docpipe.config import LLMConfig
    from tests.agents.fake_llm import FakeLLM

    def reply(messages, schema, n):
        prompt = messages[1].content  # the first user message: later ones feed a bad reply back
        assert "Reference answer:" in prompt and "Answer to grade:" in prompt
        return "I think it is fine." if "pump" in prompt.lower() else '{"score": 4, "reason": "close"}'  # junk: the heuristic tier

    fake = FakeLLM(reply, supports_schema=False)
    monkeypatch.setattr(llm, "open_llm", lambda cfg, cache_dir: fake)
    report = pipeline.run(
        EvalInputs(Layout(trained), judge=LLMConfig(model="fake", temperature=0)),
        EvalConfig(threads=1, max_answer_tokens=16, bootstrap_samples=200, engine="transformers"),
    )
    records = read_records(Layout(trained).run(report.run_id).eval_questions, EvalRecord)
    scores = [a.judge for r in records for a in r.answers.values()]
    assert fake.requests and all(s is not None and 1 <= s <= 5 for s in scores) and 4 in scores
