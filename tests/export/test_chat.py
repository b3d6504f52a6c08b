"""`docpipe chat` and the llama.cpp chat prompts beneath it (docpipe.runtime.llama) on the packaged SmolLM2:
prompts token for token as transformers makes them, one BOS,
streamed replies that stop, a conversation that remembers, and one-line errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.runtime.packaged import packaged_model_path

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed: pip install 'docpipe[local]'"
    ),
    pytest.mark.skipif(
        packaged_model_path() is None,
        reason="the packaged model is not installed: scripts/setup.sh installs requirements/packaged-models.txt",
    ),
]

runner = CliRunner()

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer from the pump manual only."}, {"role": "user", "content": "Pump rate?"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Pump rate?"},
        {"role": "assistant", "content": "40 litres per minute."},
        {"role": "user", "content": "And at night?"},
    ],
    [{"role": "user", "content": 'Café, naïve, 日本語, emoji 🚰 — and <b>tags</b> & "quotes".'}],
]


@pytest.fixture(scope="module")
def gguf():
    from docpipe.runtime import packaged

    return packaged.verified_model_path()


@pytest.fixture(scope="module")
def llm(gguf):
    import llama_cpp

    model = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=1, n_threads_batch=1, verbose=False)
    yield model
    model.close()


@pytest.fixture(scope="module")
def hf_tokenizer(gguf):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)  # about 8 s


@pytest.fixture
def generated(monkeypatch):
    """Every generate() call's prompt and the tokens it yielded, for any Llama made during the test."""
    import llama_cpp

    calls: list[tuple[list[int], list[int]]] = []
    original = llama_cpp.Llama.generate

    def spy(self, tokens, **kwargs):
        calls.append((list(tokens), []))
        for token in original(self, tokens, **kwargs):
            calls[-1][1].append(token)
            yield token

    monkeypatch.setattr(llama_cpp.Llama, "generate", spy)
    return calls


@pytest.mark.parametrize("messages", CONVERSATIONS, ids=["user", "system", "multi-turn", "unicode"])
def test_prompt_tokens_are_the_ones_transformers_trains_on(llm, hf_tokenizer, messages):
    from docpipe.runtime.llama import prompt_tokens

    expected = hf_tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
    assert prompt_tokens(llm, messages) == list(expected["input_ids"])


TEMPLATES = [
    # tojson without HTML escaping, loop controls, a trimmed block and a generation tag (TRL's assistant mask).
    (
        "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}\n"
        "  {{ m | tojson }}{% generation %}|{{ m.content }}|{% endgeneration %}\n{% endfor %}"
    ),
    (
        "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}{% if loop.index == 2 %}{% break %}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
    ),
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_render_as_transformers_renders_them(llm, template):
    from docpipe.runtime.llama import ChatFormat

    render_jinja_template = pytest.importorskip("transformers.utils.chat_template_utils").render_jinja_template

    fmt = dataclasses.replace(ChatFormat.from_gguf(llm), template=template)
    for messages in CONVERSATIONS:
        rendered, _ = render_jinja_template(
            [messages], chat_template=template, add_generation_prompt=True, bos_token=fmt.bos_token, eos_token=fmt.eos_token
        )
        assert fmt.render(messages) == rendered[0]


def test_a_template_can_raise_an_error(llm):
    import jinja2

    from docpipe.runtime.llama import ChatFormat

    fmt = dataclasses.replace(ChatFormat.from_gguf(llm), template="{{ raise_exception('no system role') }}")
    with pytest.raises(jinja2.TemplateError, match="no system role"):
        fmt.render(CONVERSATIONS[0])


@pytest.mark.parametrize(
    ("template", "add_bos", "bos_count"),
    [
        ("{{ bos_token }}{% for m in messages %}<turn>{{ m.content }}{% endfor %}", True, 1),  # Gemma writes <bos> itself
        ("{% for m in messages %}<turn>{{ m.content }}{% endfor %}", True, 1),  # llama.cpp adds it
        ("{% for m in messages %}<turn>{{ m.content }}{% endfor %}", False, 0),
    ],
)
def test_exactly_one_bos_where_the_model_wants_one(llm, template, add_bos, bos_count):
    from docpipe.runtime.llama import ChatFormat, prompt_tokens

    fmt = dataclasses.replace(ChatFormat.from_gguf(llm), template=template, add_bos=add_bos)
    tokens = prompt_tokens(llm, CONVERSATIONS[0], fmt)
    assert tokens.count(llm.token_bos()) == bos_count
    assert (tokens[0] == llm.token_bos()) == (bos_count == 1)


def test_a_gguf_without_a_chat_template_is_one_clear_line(llm, monkeypatch):
    from docpipe.runtime.llama import CHAT_TEMPLATE, ChatError, ChatFormat

    monkeypatch.delitem(llm.metadata, CHAT_TEMPLATE)
    with pytest.raises(ChatError, match="has no chat template.*docpipe export") as caught:
        ChatFormat.from_gguf(llm)
    assert "\n" not in str(caught.value)


def test_split_characters_are_printed_whole():
    from docpipe.runtime.llama import decode_utf8

    text = "é 日 🚰"
    data = text.encode()
    assert "".join(decode_utf8(data[i : i + 1] for i in range(len(data)))) == text
    assert list(decode_utf8([b"a\xf0\x9f"])) == ["a", "\ufffd"]  # a reply cut inside a character


def test_a_reply_stops_at_max_tokens(llm, generated):
    from docpipe.runtime.llama import stream_reply

    story = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    text = "".join(stream_reply(llm, story, max_tokens=8, temperature=0, top_p=0.95, repeat_penalty=1.1))
    assert text.strip() and len(generated[-1][1]) == 8


def test_a_reply_stops_at_the_end_of_its_turn(llm, generated):
    import llama_cpp

    from docpipe.runtime.llama import stream_reply

    question = [{"role": "user", "content": "What is the capital of France?"}]
    text = "".join(stream_reply(llm, question, max_tokens=200, temperature=0, top_p=0.95, repeat_penalty=1.1))
    tokens = generated[-1][1]
    assert text.strip() and "<|im_end|>" not in text
    assert len(tokens) < 200 and llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(llm.model), tokens[-1])


def test_the_oldest_exchanges_go_when_the_context_is_full(llm):
    from docpipe.runtime.llama import ChatError, prompt_tokens
    from export.chat import fit_context

    system = {"role": "system", "content": "Be brief."}
    history = []
    for i in range(12):
        history += [
            {"role": "user", "content": f"Question {i}: tell me about pump model {i} in detail."},
            {"role": "assistant", "content": f"Pump {i} moves {i * 10} litres per minute at four bar."},
        ]
    messages = [system, *history, {"role": "user", "content": "Which pump is fastest?"}]
    kept = fit_context(llm, messages, reserve=200)
    assert kept[0] == system and kept[-1] == messages[-1] and kept[1]["role"] == "user"
    assert 3 < len(kept) < len(messages) and kept[1:] == messages[len(messages) - len(kept) + 1 :]
    assert len(prompt_tokens(llm, kept)) + 200 <= llm.n_ctx()
    with pytest.raises(ChatError, match="does not fit"):
        fit_context(llm, [system, {"role": "user", "content": "pump " * 600}], reserve=200)


def test_one_question_from_the_command_line(gguf, generated):
    result = runner.invoke(app, ["chat", str(gguf), "--prompt", "What is the capital of France?", "--max-tokens", "16", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    assert len(generated) == 1 and 0 < len(generated[0][1]) <= 16


def test_a_conversation_remembers_earlier_turns_until_reset(llm, gguf, generated):
    import llama_cpp

    from docpipe.runtime.llama import prompt_tokens
    from export.chat import chat

    lines = iter(["My name is Ana.", "What is my name?", "/reset", "What is my name?"])

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out = io.StringIO()
    chat(gguf, system=None, prompt=None, max_tokens=24, temperature=0, threads=1, out=out, read=read)
    (first, reply_tokens), (second, _), (after_reset, _) = generated
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    reply = llm.detokenize([t for t in reply_tokens if not llama_cpp.llama_vocab_is_eog(vocab, t)]).decode()
    assert reply.strip() and reply in out.getvalue()
    ana, name = {"role": "user", "content": "My name is Ana."}, {"role": "user", "content": "What is my name?"}
    assert second == prompt_tokens(llm, [ana, {"role": "assistant", "content": reply}, name])
    assert second[: len(first)] == first
    assert after_reset == prompt_tokens(llm, [name])


@pytest.mark.parametrize(
    ("system", "metadata", "seen"),
    [
        (None, "Answer from the manual.", "Answer from the manual."),  # the prompt docpipe export wrote
        ("Answer in one word.", "Answer from the manual.", "Answer in one word."),  # --system wins
        (None, None, "You are a helpful AI assistant named SmolLM"),  # none: the template's own default
    ],
)
def test_the_system_prompt_comes_from_the_gguf_unless_given(llm, gguf, generated, monkeypatch, system, metadata, seen):
    import llama_cpp

    from export import chat as chat_module

    class WithSystemPrompt(llama_cpp.Llama):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if metadata is not None:
                self.metadata[chat_module.SYSTEM_PROMPT] = metadata

    monkeypatch.setattr(llama_cpp, "Llama", WithSystemPrompt)
    chat_module.chat(gguf, system=system, prompt="Hi", max_tokens=1, temperature=0, threads=1, out=io.StringIO())
    assert seen in llm.detokenize(generated[0][0], special=True).decode()


def test_not_a_gguf_is_one_clear_line(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("not a model")
    for path, message in ((fake, "is not a GGUF file"), (tmp_path / "missing.gguf", "no GGUF file at")):
        result = runner.invoke(app, ["chat", str(path)])
        assert result.exit_code == 2
        assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_without_llama_cpp_the_error_names_the_extra(gguf):
    code = (
        "import sys\nsys.modules['llama_cpp'] = None\nfrom typer.testing import CliRunner\nfrom docpipe.cli import app\n"
        f"result = CliRunner().invoke(app, ['chat', {str(gguf)!r}])\nprint(result.exit_code, result.output)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("2 ") and "pip install 'docpipe[local]'" in out
