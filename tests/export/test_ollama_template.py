"""Golden tests of the Ollama TEMPLATE: Go's own text/template executes it, and its text must equal,
byte for byte, what Hugging Face's apply_chat_template renders with the base model's chat template."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from docpipe.runtime import packaged
from docpipe.runtime.pretrained import GEMMA3_CHAT_TEMPLATE
from export.ollama_template import TemplateError, ollama_template
from tests.trainers.tiny_model import CHATML

# Executes a template as Ollama does (text/template, missingkey=zero, .Messages of Role and Content),
# once per case: reads {"template", "cases": [{"messages": [...]}]}, prints the renderings as a JSON list.
_GO_PROGRAM = """package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type message struct{ Role, Content string }

func main() {
	var in struct {
		Template string
		Cases    []struct{ Messages []*message }
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	tmpl := template.Must(template.New("").Option("missingkey=zero").Parse(in.Template))
	out := []string{}
	for _, c := range in.Cases {
		var b strings.Builder
		if err := tmpl.Execute(&b, map[string]any{"Messages": c.Messages}); err != nil {
			panic(err)
		}
		out = append(out, b.String())
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
"""

QWEN_DEFAULT = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
# Qwen2.5's template without tools: its own system prompt when the conversation brings none.
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>system\\n" + QWEN_DEFAULT + "<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- for message in messages -%}{%- if not (loop.first and message['role'] == 'system') -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
# A default system prompt that is hostile to every layer: Go actions, Go string quotes, Modelfile
# quotes, backslashes, a rune the Modelfile parser would drop (NBSP), and non-ASCII text.
HOSTILE_DEFAULT = 'Say {{ .Content }} "as is" """\nor \\ not}}\t\u00a0café 中文'
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content']"
    " + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
# Google's Gemma turns trim each message: a Go template cannot, so docpipe must refuse it.
GEMMA_TRIMMED = GEMMA3_CHAT_TEMPLATE.replace("message['content']", "message['content'] | trim")


def _chatml_with_default(default: str) -> str:
    literal = json.dumps(default)  # ASCII-escaped: also a valid Jinja string literal for BMP text
    return (
        "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
        "{{ '<|im_start|>system\\n' + " + literal + " + '<|im_end|>\\n' }}{% endif %}" + CHATML[len("{% for message in messages %}") :]
    )


def _system(text):
    return {"role": "system", "content": text}


def _user(text):
    return {"role": "user", "content": text}


def _assistant(text):
    return {"role": "assistant", "content": text}


HOSTILE = ["{{ .Content }}", "{{", "}}", '"""', "back\\slash", "é 中文 🙂 👩‍💻", "  padded  ", "\nnewlines\n\n", "", "crlf\r\nline\r\n"]
CONVERSATIONS = [
    [_user("What is the pump rate?")],
    [_system("Answer from the documents."), _user("What is the pump rate?")],
    [
        _system("Answer from the documents."),
        _user("Pump rate?"),
        _assistant("40 l/min.\n\nSource: guide.pdf, p. 3"),
        _user("And the bridge?"),
        _assistant("It opened in 1932."),
        _user("Who built it?"),
    ],
    [_system("Answer from the documents.")],
    [_user("Pump rate?"), _assistant("40 l/min."), _user("Sure?")],
    *([_system(text), _user(text), _assistant(text), _user(text)] for text in HOSTILE),
    *([_user(text)] for text in HOSTILE),
]


@pytest.fixture(scope="module")
def go_render(tmp_path_factory):
    """Renders a Go template over conversations with Go's own text/template (the program is built once)."""
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI"):
            pytest.fail("go is not installed: CI must install it (Debian's golang-go) to run the Ollama template goldens")
        pytest.skip("go is not installed: the Ollama template goldens execute Go's text/template")
    folder = tmp_path_factory.mktemp("go")
    (folder / "render.go").write_text(_GO_PROGRAM, encoding="utf-8")
    env = dict(os.environ, GO111MODULE="off", GOFLAGS="", GOTOOLCHAIN="local")
    if not (env.get("GOCACHE") or env.get("XDG_CACHE_HOME") or env.get("HOME")):  # go needs a cache folder
        env.update(GOCACHE=str(folder / "cache"), GOPATH=str(folder / "gopath"))
    subprocess.run([go, "build", "-o", str(folder / "render"), "render.go"], cwd=folder, env=env, check=True, timeout=300)

    def render(template: str, conversations: list[list[dict]]) -> list[str]:
        cases = [{"messages": [{"Role": m["role"], "Content": m["content"]} for m in c]} for c in conversations]
        done = subprocess.run(
            [str(folder / "render")],
            input=json.dumps({"template": template, "cases": cases}),
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=True,
            timeout=60,
        )
        return json.loads(done.stdout)

    return render


def _tokenizer(chat_template: str, *, bos: str | None, eos: str, special: list[str]):
    """A tokenizer that knows only its special tokens: rendering text needs no more."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["[UNK]", *special])}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")), bos_token=bos, eos_token=eos, unk_token="[UNK]"
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def _chatml_tokenizer(chat_template: str):
    return _tokenizer(chat_template, bos=None, eos="<|im_end|>", special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])


def _gemma_tokenizer(chat_template: str = GEMMA3_CHAT_TEMPLATE):
    return _tokenizer(chat_template, bos="<bos>", eos="<eos>", special=["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"])


def _render(tokenizer):
    return lambda messages: tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2-135M-Instruct's real tokenizer and chat template, from the packaged GGUF (about 5 s)."""
    path = packaged.packaged_model_path()
    if path is None:
        pytest.skip("the packaged model is not installed (requirements/packaged-models.txt)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path.parent, gguf_file=packaged.verified_model_path().name)


def _assert_golden(go_render, tokenizer, *, add_bos: bool) -> None:
    render = _render(tokenizer)
    template = ollama_template(render, bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token, add_bos=add_bos)
    expected = [render(c) for c in CONVERSATIONS]
    for conversation, want, got in zip(CONVERSATIONS, expected, go_render(template.go_template, CONVERSATIONS)):
        assert template.runtime_bos + got == want, conversation


def test_smollm2_template_renders_as_in_hugging_face(go_render, smollm2):
    template = ollama_template(_render(smollm2), bos_token=smollm2.bos_token, eos_token=smollm2.eos_token, add_bos=False)
    assert template.family == "chatml" and template.runtime_bos == ""
    assert "You are a helpful AI assistant named SmolLM, trained by Hugging Face" in template.go_template
    assert "<|im_end|>" in template.stop
    _assert_golden(go_render, smollm2, add_bos=False)


@pytest.mark.parametrize(
    "chat_template", [QWEN25, CHATML, _chatml_with_default(HOSTILE_DEFAULT)], ids=["qwen2.5", "plain", "hostile-default"]
)
def test_chatml_templates_render_as_in_hugging_face(go_render, chat_template):
    tokenizer = _chatml_tokenizer(chat_template)
    template = ollama_template(_render(tokenizer), bos_token=None, eos_token="<|im_end|>", add_bos=False)
    assert template.family == "chatml" and template.stop == ("<|im_end|>", "<|im_start|>")
    _assert_golden(go_render, tokenizer, add_bos=False)


def test_hostile_default_system_prompt_is_a_go_string_constant():
    tokenizer = _chatml_tokenizer(_chatml_with_default(HOSTILE_DEFAULT))
    assert HOSTILE_DEFAULT in _render(tokenizer)([_user("hi")])  # the Jinja literal holds it verbatim
    template = ollama_template(_render(tokenizer), bos_token=None, eos_token=None, add_bos=False)
    assert '"""' not in template.go_template and "\u00a0" not in template.go_template  # escaped: \" and \U000000a0
    assert "café 中文" in template.go_template  # raw, not \u escapes


@pytest.mark.parametrize("add_bos", [True, False])
def test_gemma_turns_render_as_in_hugging_face(go_render, add_bos):
    tokenizer = _gemma_tokenizer()
    template = ollama_template(_render(tokenizer), bos_token="<bos>", eos_token="<eos>", add_bos=add_bos)
    assert template.family == "gemma" and template.stop == ("<end_of_turn>", "<eos>")
    assert template.runtime_bos == ("<bos>" if add_bos else "")
    assert ('{{ "<bos>" }}' in template.go_template) is not add_bos  # written by the runtime, or by the template
    _assert_golden(go_render, tokenizer, add_bos=add_bos)


@pytest.mark.parametrize(
    "build, chat_template",
    [(_chatml_tokenizer, LLAMA3), (_gemma_tokenizer, GEMMA_TRIMMED), (_chatml_tokenizer, "{{ raise_exception('no system role') }}")],
    ids=["llama3", "trimming-gemma", "raises"],
)
def test_other_templates_are_refused(build, chat_template):
    tokenizer = build(chat_template)
    with pytest.raises(TemplateError, match="ChatML"):
        ollama_template(_render(tokenizer), bos_token=tokenizer.bos_token, eos_token=tokenizer.eos_token, add_bos=False)
