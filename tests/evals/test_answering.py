"""Answering evaluation questions on a tiny model really trained: transformers (the reference) and llama.cpp on a
GGUF made on the fly give the same greedy answers, base and tuned; llama.cpp's prompts are the training token ids;
left-padded batches answer as one prompt at a time; the cache means no answer is generated twice."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from docpipe.config import DocpipeConfig, TrainConfig
from docpipe.layout import Layout
from docpipe.runtime.chat_format import SYSTEM_PROMPT
from docpipe.runtime.hardware import Hardware
from docpipe.store import JsonCache
from evals import answering
from evals.answering import Answer, LlamaCppAnswerer, TransformersAnswerer, answer_questions, make_gguf, messages
from tests.stages import train_run
from tests.trainers.tiny_model import build_tiny_model, tiny_dataset

CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=2)
needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed: pip install 'docpipe[local]'"
)
QUESTIONS = [
    "What is the setting of pump 3?",  # trained on
    "What is the setting of pump 11?",
    "What is the setting of pump 17?",  # held out
    "When was the bridge opened?",  # not in the documents
    "Pump?",  # short, so that a batch needs padding
]
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny llama with an adapter trained hard enough to change its answers, and its GGUFs (base, tuned)."""
    root = tmp_path_factory.mktemp("answering")
    base = build_tiny_model(root / "base", init_std=0.3)
    out = root / "out"
    tiny_dataset(out / "dataset", pairs=16)
    cfg = DocpipeConfig(train=TrainConfig(base_model=str(base), batch_size=4, max_steps=4, learning_rate=1e-2, threads=1))
    trained = train_run(out, cfg, hardware=CPU)
    adapter = Path(trained.adapter)
    layout = Layout(out)
    ggufs = {
        "base": make_gguf(base, None, layout.eval_gguf(trained.run_id, "base"), system_prompt=SYSTEM_PROMPT),
        "tuned": make_gguf(base, adapter, layout.eval_gguf(trained.run_id, "tuned"), system_prompt=SYSTEM_PROMPT),
    }
    f32 = {label: make_gguf(base, a, root / f"{label}-f32.gguf", dtype="f32") for label, a in (("base", None), ("tuned", adapter))}
    return SimpleNamespace(base=base, adapter=adapter, layout=layout, ggufs=ggufs, f32=f32)


class FakeAnswerer:
    """An answerer driven by a function of the question; it counts the prompts it is asked."""

    engine, model_hash, batch_size = "fake", "fake-model", 2

    def __init__(self, reply=lambda question: f"About {question}"):
        self.reply, self.asked = reply, []

    def answer(self, prompts, max_tokens):
        answers = [Answer(text=self.reply(p[-1]["content"]), tokens=[1, 2], finished=True) for p in prompts]
        self.asked += [p[-1]["content"] for p in prompts]  # only a whole batch is answered
        return answers

    def close(self):
        pass


def _ask(answerer, questions=QUESTIONS, max_tokens=MAX_TOKENS):
    try:
        return answer_questions(answerer, questions, system=SYSTEM_PROMPT, max_tokens=max_tokens)
    finally:
        answerer.close()


@pytest.fixture(scope="module")
def reference(run):
    """label -> transformers' answers (the reference engine), computed once."""
    return {label: _ask(TransformersAnswerer(run.base, run.adapter if label == "tuned" else None)) for label in ("base", "tuned")}


@needs_llama_cpp
@pytest.mark.parametrize("label", ["base", "tuned"])
def test_both_engines_give_the_same_greedy_answers(run, reference, label):
    # In float32 the engines differ only in summation order: the same prompt ids, greedy steps and stops give
    # the same answers token for token.
    answers = _ask(LlamaCppAnswerer(run.f32[label], threads=1))

    assert [a.tokens for a in answers] == [r.tokens for r in reference[label]]
    assert [a.text for a in answers] == [r.text for r in reference[label]]
    assert [a.finished for a in answers] == [r.finished for r in reference[label]]
    assert all(a.tokens for a in answers)


@needs_llama_cpp
@pytest.mark.parametrize("label", ["base", "tuned"])
def test_the_f16_gguf_answers_as_the_reference_until_rounding_tips_a_near_tie(run, reference, label):
    # F16 rounds the weights: where two tokens are nearly tied, greedy decoding may take the other one, and the
    # answer goes its own way from there (seen on this model after 22 tokens). Until then it must agree.
    answers = _ask(LlamaCppAnswerer(run.ggufs[label], threads=1))

    assert sum(a.tokens == r.tokens for a, r in zip(answers, reference[label])) >= len(QUESTIONS) - 1
    assert all(a.tokens[:8] == r.tokens[:8] for a, r in zip(answers, reference[label]))


@needs_llama_cpp
def test_the_adapter_changes_the_answers_in_both_engines(run):
    def ask(label):
        return [a.tokens for a in _ask(LlamaCppAnswerer(run.ggufs[label], threads=1))]

    assert ask("base") != ask("tuned")  # the tuned GGUF holds the merged adapter, not the base again


@needs_llama_cpp
def test_llama_cpp_prompts_are_the_training_token_ids(run):
    answerer = LlamaCppAnswerer(run.ggufs["tuned"], threads=1)
    try:
        reference = TransformersAnswerer(run.base, run.adapter)
        for question in QUESTIONS:
            for system in (SYSTEM_PROMPT, ""):
                assert answerer.prompt_ids(messages(question, system)) == reference._prompt_ids(messages(question, system))
    finally:
        answerer.close()


def test_left_padded_batches_answer_as_one_prompt_at_a_time(run):
    answerer = TransformersAnswerer(run.base, run.adapter, batch_size=1)
    one_by_one = answer_questions(answerer, QUESTIONS, system=SYSTEM_PROMPT, max_tokens=MAX_TOKENS)
    answerer.batch_size = 4
    batched = answer_questions(answerer, QUESTIONS, system=SYSTEM_PROMPT, max_tokens=MAX_TOKENS)
    assert batched == one_by_one


@needs_llama_cpp
def test_the_gguf_made_on_the_fly_loads_in_llama_cpp_and_is_reused(run, monkeypatch):
    import llama_cpp

    from docpipe.runtime.gguf_vocab import CHAT_TEMPLATE
    from docpipe.runtime.gguf_vocab import SYSTEM_PROMPT as SYSTEM_KEY

    path = run.ggufs["tuned"]
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False)
    try:
        assert llm.metadata[CHAT_TEMPLATE] == (run.base / "chat_template.jinja").read_text(encoding="utf-8")
        assert llm.metadata[SYSTEM_KEY] == SYSTEM_PROMPT
        assert llm.tokenize(b"pump", add_bos=False)
    finally:
        llm.close()
    assert path.parent == run.layout.cache / "eval_gguf" and not list(path.parent.glob(".*partial"))

    before = path.stat().st_mtime_ns
    monkeypatch.setattr("docpipe.runtime.merge.load_trained", lambda *a: pytest.fail("the GGUF was made again"))
    assert make_gguf(run.base, run.adapter, path) == path and path.stat().st_mtime_ns == before


@needs_llama_cpp
def test_the_cache_prevents_a_second_generation(run, tmp_path, monkeypatch):
    import llama_cpp

    generated = []
    real = llama_cpp.Llama.generate

    def spy(self, tokens, **kwargs):
        generated.append(list(tokens))
        yield from real(self, tokens, **kwargs)

    monkeypatch.setattr(llama_cpp.Llama, "generate", spy)
    cache = JsonCache(tmp_path / "answers")
    answerer = LlamaCppAnswerer(run.ggufs["tuned"], threads=1)
    try:
        first = answer_questions(answerer, QUESTIONS, system=SYSTEM_PROMPT, max_tokens=MAX_TOKENS, cache=cache)
        assert len(generated) == len(QUESTIONS)
        again = answer_questions(answerer, QUESTIONS, system=SYSTEM_PROMPT, max_tokens=MAX_TOKENS, cache=cache)
        assert again == first and len(generated) == len(QUESTIONS)  # nothing generated the second time
        answer_questions(answerer, QUESTIONS[:1], system=SYSTEM_PROMPT, max_tokens=MAX_TOKENS + 1, cache=cache)
        assert len(generated) == len(QUESTIONS) + 1  # other settings, another answer
    finally:
        answerer.close()


def test_an_interrupted_run_repeats_no_answer(tmp_path):
    cache = JsonCache(tmp_path / "answers")

    def fail_on_bridge(question):
        if "bridge" in question:
            raise KeyboardInterrupt
        return f"About {question}"

    interrupted = FakeAnswerer(fail_on_bridge)
    interrupted.batch_size = 1
    with pytest.raises(KeyboardInterrupt):
        answer_questions(interrupted, QUESTIONS, system=SYSTEM_PROMPT, max_tokens=8, cache=cache)
    finished = set(interrupted.asked)

    resumed, progress = FakeAnswerer(), []
    answers = answer_questions(resumed, QUESTIONS, system=SYSTEM_PROMPT, max_tokens=8, cache=cache, progress=lambda *p: progress.append(p))
    assert [a.text for a in answers] == [f"About {q}" for q in QUESTIONS]
    assert finished and not finished & set(resumed.asked) and len(resumed.asked) == len(QUESTIONS) - len(finished)
    assert progress[0] == (len(finished), len(QUESTIONS)) and progress[-1] == (len(QUESTIONS), len(QUESTIONS))


def test_a_question_asked_twice_is_answered_once():
    answerer, progress = FakeAnswerer(), []
    answers = answer_questions(answerer, ["a?", "b?", "a?"], system="", max_tokens=8, progress=lambda *p: progress.append(p))
    assert [a.text for a in answers] == ["About a?", "About b?", "About a?"] and sorted(answerer.asked) == ["a?", "b?"]
    assert progress[-1] == (3, 3)


def test_the_cache_key_holds_the_engine_model_prompt_and_settings():
    fake, other = FakeAnswerer(), SimpleNamespace(engine="fake", model_hash="other-model")
    prompt = messages("a?", SYSTEM_PROMPT)
    keys = {
        answering.answer_key(fake, prompt, 8),
        answering.answer_key(other, prompt, 8),
        answering.answer_key(fake, messages("a?", ""), 8),
        answering.answer_key(fake, prompt, 9),
        answering.answer_key(SimpleNamespace(engine="llama.cpp", model_hash="fake-model"), prompt, 8),
    }
    assert len(keys) == 5 and answering.answer_key(fake, prompt, 8) in keys
