"""The Modelfile's TEMPLATE: a Go text/template that renders, for Ollama, the very text the base
model's Hugging Face chat template renders, so the exported model is prompted as it was trained.

The template's family is found by rendering probe conversations with the Hugging Face template and
comparing them with a reference renderer per family, never by reading its Jinja source: only what
it renders counts, and a family is accepted only when every probe matches byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Render = Callable[[list[dict]], str]  # apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class TemplateError(ValueError):
    """A chat template docpipe cannot write as an Ollama TEMPLATE; the message says what to do."""


@dataclass(frozen=True)
class OllamaTemplate:
    family: str  # "chatml" | "gemma"
    go_template: str  # the Modelfile's TEMPLATE, over Ollama's .Messages (each .Role, .Content)
    stop: tuple[str, ...]  # one `PARAMETER stop` each: the family's end-of-turn tokens and the EOS token
    runtime_bos: str  # what the Hugging Face rendering starts with that Ollama adds as a BOS token instead


# Probe contents carry leading and trailing whitespace and newlines, so a template that trims (as
# Google's own Gemma template does) fails detection: Go templates cannot trim content the same way.
_SYSTEM = {"role": "system", "content": " Answer only from the documents.\n"}
_USER = {"role": "user", "content": "  What does the {{ guide }} say?\n\n"}
_ASSISTANT = {"role": "assistant", "content": "\nIt says 40 l/min. "}
_PROBES = ([_USER], [_SYSTEM, _USER], [_SYSTEM, _USER, _ASSISTANT, _USER], [_USER, _ASSISTANT, _USER], [_SYSTEM])

_STOP = {"chatml": ("<|im_end|>", "<|im_start|>"), "gemma": ("<end_of_turn>",)}
_CHATML_SYSTEM = "<|im_start|>system\n"
_CHATML_END = "<|im_end|>\n"
_GO_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Gemma turns, as docpipe.runtime.pretrained.GEMMA3_CHAT_TEMPLATE writes them: only messages[0] can be the
# system prompt, and it opens the first non-system turn; later system messages are left out.
_GO_GEMMA_TURNS = (
    '{{ $system := "" }}{{ $first := true }}'
    "{{ range $i, $m := .Messages }}"
    '{{ if eq $m.Role "system" }}{{ if eq $i 0 }}{{ $system = print $m.Content "\\n\\n" }}{{ end }}'
    '{{ else }}<start_of_turn>{{ if eq $m.Role "assistant" }}model{{ else }}{{ $m.Role }}{{ end }}\n'
    "{{ if $first }}{{ $system }}{{ $first = false }}{{ end }}{{ $m.Content }}<end_of_turn>\n"
    "{{ end }}{{ end }}<start_of_turn>model\n"
)


def ollama_template(render: Render, *, bos_token: str | None, eos_token: str | None, add_bos: bool) -> OllamaTemplate:
    """The Ollama TEMPLATE that renders what `render` does.

    Args:
        render: the base model's chat template, as Hugging Face applies it with a generation prompt.
        bos_token: the tokenizer's BOS token text, which templates get as `bos_token`.
        eos_token: the tokenizer's EOS token text; generation stops on it too.
        add_bos: whether the runtime adds a BOS token itself (the GGUF's tokenizer.ggml.add_bos_token).

    Raises:
        TemplateError: the template renders neither ChatML nor Gemma turns exactly.
    """
    rendered = [_probe(render, messages) for messages in _PROBES]
    default = _chatml_default(rendered[0])
    if all(text == _chatml(messages, default) for messages, text in zip(_PROBES, rendered)):
        family, go_template, runtime_bos = "chatml", _go_chatml(default), ""
    elif all(text == _gemma(messages, bos_token or "") for messages, text in zip(_PROBES, rendered)):
        # Ollama tokenizes the prompt with the GGUF's add_bos: the template must not write BOS a second time.
        family, runtime_bos = "gemma", (bos_token or "") if add_bos else ""
        go_template = (_go_string(bos_token) if bos_token and not add_bos else "") + _GO_GEMMA_TURNS
    else:
        raise TemplateError(
            "the base model's chat template is not one docpipe can write for Ollama (supported: ChatML, "
            "Gemma turns); choose a base model with one of them, or write the Modelfile's TEMPLATE by hand"
        )
    stop = _STOP[family] + ((eos_token,) if eos_token and eos_token not in _STOP[family] else ())
    return OllamaTemplate(family, go_template, stop, runtime_bos)


def _probe(render: Render, messages: list[dict]) -> str:
    try:
        return render([dict(m) for m in messages])
    except Exception as exc:  # a template is arbitrary code: one that rejects a probe (e.g. no system role) is unsupported
        raise TemplateError(
            f"the base model's chat template failed on a plain conversation ({exc}); "
            "choose a base model with a ChatML or Gemma chat template"
        ) from exc


def _chatml(messages: list[dict], default: str | None) -> str:
    head = ""
    if default is not None and messages and messages[0]["role"] != "system":
        head = f"{_CHATML_SYSTEM}{default}{_CHATML_END}"
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}{_CHATML_END}" for m in messages)
    return head + turns + "<|im_start|>assistant\n"


def _chatml_default(rendered_user_only: str) -> str | None:
    """The system prompt a ChatML template adds when a conversation has none (SmolLM2 and Qwen2.5 do)."""
    if not rendered_user_only.startswith(_CHATML_SYSTEM) or _CHATML_END not in rendered_user_only:
        return None
    return rendered_user_only[len(_CHATML_SYSTEM) : rendered_user_only.index(_CHATML_END)]


def _gemma(messages: list[dict], bos: str) -> str:
    system = messages[0]["content"] + "\n\n" if messages and messages[0]["role"] == "system" else ""
    turns = [m for m in messages if m["role"] != "system"]
    text = "".join(
        f"<start_of_turn>{'model' if m['role'] == 'assistant' else m['role']}\n{system if i == 0 else ''}{m['content']}<end_of_turn>\n"
        for i, m in enumerate(turns)
    )
    return bos + text + "<start_of_turn>model\n"


def _go_chatml(default: str | None) -> str:
    head = ""
    if default is not None:  # only when a conversation does not open with its own system prompt, as in Hugging Face
        head = '{{ if and (eq $i 0) (ne $m.Role "system") }}' + _CHATML_SYSTEM + _go_string(default) + _CHATML_END + "{{ end }}"
    return (
        "{{ range $i, $m := .Messages }}"
        + head
        + "<|im_start|>{{ $m.Role }}\n{{ $m.Content }}"
        + _CHATML_END
        + "{{ end }}<|im_start|>assistant\n"
    )


def _go_string(text: str) -> str:
    """`text` as a Go string constant in an action, so delimiters, quotes and `\"\"\"` in it are inert.

    Runes the Modelfile parser would drop are escaped (\\U, by code point); other non-ASCII runes stay raw,
    because JSON-style escapes would write an emoji as UTF-16 surrogate halves, which Go rejects.
    """
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif go_is_print(ch):
            out.append(ch)
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise TemplateError(
                "the chat template's text holds a lone UTF-16 surrogate, which no UTF-8 file can; fix the base model's chat template"
            )
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '{{ "' + "".join(out) + '" }}'


def go_is_print(ch: str) -> bool:
    """Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.

    Ollama's Modelfile parser silently drops every other rune of a value, except the spaces, tabs and
    newlines it handles first. Python's isprintable has the same definition (no Other or Separator but
    ASCII space); the two agree on every code point both Unicode versions assign (checked against Go 1.19).
    """
    return ch.isprintable()
