"""llama.cpp (through llama-cpp-python) as every part of docpipe runs it: its log output, its threads, and
a chat prompt rendered with the GGUF's template as transformers renders it in training (exactly one BOS),
the reply stopping at an end-of-turn token.

Used by the local LLM provider, `docpipe chat`, the export's parity check and `docpipe eval`.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

try:
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    import llama_cpp
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as exc:
    raise ImportError("running a GGUF model needs llama-cpp-python: pip install 'docpipe[local]'") from exc

from docpipe.errors import DocpipeError
from docpipe.runtime.gguf_vocab import CHAT_TEMPLATE

Message = dict[str, str]


class ChatError(DocpipeError):
    """A problem to report in one line: a file llama.cpp cannot load, no chat template, a question too long."""

    stage = "chat"


@llama_cpp.llama_log_callback
def _log_errors_only(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    global _last_level
    _last_level = _last_level if level == _GGML_CONT else level
    if _last_level == _GGML_ERROR:
        sys.stderr.write(text.decode("utf-8", errors="replace"))


_GGML_ERROR, _GGML_CONT = 4, 5  # ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT
_last_level = 0


def quiet_llama_logs() -> None:
    """Let only llama.cpp's errors through to stderr.

    llama-cpp-python 0.3.36 maps ggml's log levels by an older numbering, so with verbose=False it
    still printed warnings (a Gemma model: "using full-size SWA cache" at every load, a note on
    every prompt that starts with BOS) into docpipe's output, and would hide real errors.
    """
    llama_cpp.llama_log_set(_log_errors_only, ctypes.c_void_p(0))


def default_threads() -> int:
    """Threads for a local model: all cores but one, at most 4; so 1 on a 2-core machine.

    llama.cpp's threads spin while they wait for each other, so a thread without a core of its
    own stalls them all: SmolLM2-135M on an idle 2-core machine made 45 tokens/s with 2 threads
    and 28 with 1, but 3.5 with 2 once another process took a core. Set llm.threads on a
    machine that does nothing else. Beyond 4, a small model gains little.
    """
    return max(1, min(4, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class ChatFormat:
    """What turning a conversation into tokens needs from the GGUF; a test can swap any part."""

    template: str
    bos_id: int  # -1 when the vocabulary has no BOS
    bos_token: str  # its text, "" when there is none
    eos_token: str
    add_bos: bool  # tokenizer.ggml.add_bos_token, or llama.cpp's default for the vocabulary type

    @classmethod
    def from_gguf(cls, llm: llama_cpp.Llama) -> ChatFormat:
        template = llm.metadata.get(CHAT_TEMPLATE)
        if not template:
            raise ChatError(f"{llm.model_path} has no chat template ({CHAT_TEMPLATE}): export the model with `docpipe export`")
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        return cls(
            template=template,
            bos_id=llm.token_bos(),
            bos_token=_token_text(llm, llm.token_bos()),
            eos_token=_token_text(llm, llm.token_eos()),
            add_bos=bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        )

    def render(self, messages: list[Message]) -> str:
        return _compile(self.template).render(
            messages=messages, add_generation_prompt=True, bos_token=self.bos_token, eos_token=self.eos_token
        )


def prompt_tokens(llm: llama_cpp.Llama, messages: list[Message], fmt: ChatFormat | None = None) -> list[int]:
    """The conversation as token ids, ending in the assistant's turn, with exactly one BOS where the model wants one.

    Args:
        llm: the loaded GGUF.
        messages: `{"role", "content"}` dicts, the new user turn last.
        fmt: the template and BOS rules; default: read from the GGUF's metadata.
    """
    fmt = fmt or ChatFormat.from_gguf(llm)
    text = fmt.render(messages)
    # A template that writes the BOS text itself (Gemma's) must not get a second one. The BOS is added here, not
    # by tokenize(add_bos=True): that is llama.cpp's add_special, which adds BOS only where the GGUF's flag says
    # so and also EOS where tokenizer.ggml.add_eos_token does, which a prompt must not end with.
    add_bos = fmt.add_bos and fmt.bos_id >= 0 and not text.startswith(fmt.bos_token)
    return ([fmt.bos_id] if add_bos else []) + llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def reply_tokens(
    llm: llama_cpp.Llama, tokens: list[int], *, max_tokens: int, temperature: float, top_p: float = 1.0, repeat_penalty: float = 1.0
) -> Iterator[int]:
    """The reply's token ids to `tokens` (a prompt), as they come, up to an end-of-turn token (not yielded) or
    `max_tokens`; temperature 0 is greedy.

    Raises:
        ChatError: the prompt leaves no room in the context.
    """
    room = min(max_tokens, llm.n_ctx() - len(tokens))
    if room <= 0:
        raise ChatError(f"the conversation ({len(tokens)} tokens) fills the {llm.n_ctx()}-token context")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    pieces = llm.generate(tokens, temp=temperature, top_p=top_p, repeat_penalty=repeat_penalty)
    try:
        for count, token in enumerate(pieces, start=1):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                return
            yield token
            if count >= room:
                return
    finally:
        pieces.close()


def stream_reply(
    llm: llama_cpp.Llama,
    messages: list[Message],
    *,
    max_tokens: int,
    temperature: float,
    top_p: float,
    repeat_penalty: float,
    fmt: ChatFormat | None = None,
) -> Iterator[str]:
    """The assistant's reply as text pieces, as the tokens come, up to an end-of-generation token or `max_tokens`.

    Raises:
        ChatError: the prompt leaves no room in the context.
    """
    tokens = prompt_tokens(llm, messages, fmt)
    reply = reply_tokens(llm, tokens, max_tokens=max_tokens, temperature=temperature, top_p=top_p, repeat_penalty=repeat_penalty)
    try:
        yield from decode_utf8(llm.detokenize([token]) for token in reply)
    finally:
        reply.close()


def decode_utf8(chunks: Iterable[bytes]) -> Iterator[str]:
    """Text from byte chunks that may split a character (one token can hold half of an emoji)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        if text := decoder.decode(chunk):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail


def _token_text(llm: llama_cpp.Llama, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""


class _GenerationTag(jinja2.ext.Extension):
    """transformers' `{% generation %}` marks assistant text for the training loss mask; rendering keeps the text."""

    tags: ClassVar[set[str]] = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_keep"), [], [], body).set_lineno(lineno)

    def _keep(self, caller: Callable[[], str]) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: object, ensure_ascii: bool = False, indent: int | None = None, separators: tuple[str, str] | None = None, sort_keys: bool = False
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@functools.lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    # The environment transformers' apply_chat_template renders with (utils/chat_template_utils.py), so the
    # prompt here is the one training saw: its tojson does not escape HTML, and templates may raise errors.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)
