"""`docpipe chat`: talk to an exported GGUF in llama-cpp-python, its chat template rendered as
transformers renders it in training, the reply streamed as it is generated."""

from __future__ import annotations

import codecs
import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TextIO

try:
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    import llama_cpp
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError as exc:
    raise ImportError("docpipe chat needs llama-cpp-python: pip install 'docpipe[local]'") from exc

from docpipe.errors import DocpipeError
from docpipe.runtime.llama import default_threads, quiet_llama_logs

# GGUF metadata read here; docpipe's exporter writes SYSTEM_PROMPT beside the template.
CHAT_TEMPLATE = "tokenizer.chat_template"
SYSTEM_PROMPT = "docpipe.system_prompt"

CONTEXT_TOKENS = 4096  # within every supported base's training context; prompt and reply share it
TOP_P = 0.9  # as the exported Modelfile (export.top_p)
REPEAT_PENALTY = 1.1

Message = dict[str, str]


class ChatError(DocpipeError):
    """A problem to report in one line: a file llama.cpp cannot load, no chat template, a question too long."""

    stage = "chat"


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


def fit_context(llm: llama_cpp.Llama, messages: list[Message], reserve: int, fmt: ChatFormat | None = None) -> list[Message]:
    """The conversation without its oldest exchanges, so that the prompt leaves `reserve` tokens of the context
    for the reply; a leading system message and the last message always stay.

    Raises:
        ChatError: even the system message and the last message alone leave no room.
    """
    fmt = fmt or ChatFormat.from_gguf(llm)
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns = messages[len(head) :]
    while len(prompt_tokens(llm, head + turns, fmt)) + reserve > llm.n_ctx():
        if len(turns) <= 1:
            raise ChatError(
                f"the question does not fit the {llm.n_ctx()}-token context with {reserve} tokens left "
                "for the reply: shorten it or lower --max-tokens"
            )
        turns = turns[1:]
        while len(turns) > 1 and turns[0]["role"] != "user":  # an exchange goes as a whole
            turns = turns[1:]
    return head + turns


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
    room = min(max_tokens, llm.n_ctx() - len(tokens))
    if room <= 0:
        raise ChatError(f"the conversation ({len(tokens)} tokens) fills the {llm.n_ctx()}-token context")
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    pieces = llm.generate(tokens, temp=temperature, top_p=top_p, repeat_penalty=repeat_penalty)

    def token_bytes() -> Iterator[bytes]:
        for count, token in enumerate(pieces, start=1):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                return
            yield llm.detokenize([token])
            if count >= room:
                return

    try:
        yield from decode_utf8(token_bytes())
    finally:
        pieces.close()


def decode_utf8(chunks: Iterable[bytes]) -> Iterator[str]:
    """Text from byte chunks that may split a character (one token can hold half of an emoji)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in chunks:
        if text := decoder.decode(chunk):
            yield text
    if tail := decoder.decode(b"", final=True):
        yield tail


def chat(
    gguf: Path,
    *,
    system: str | None,
    prompt: str | None,
    max_tokens: int,
    temperature: float,
    threads: int | None,
    out: TextIO | None = None,
    read: Callable[[str], str] = input,
) -> None:
    """Answer `prompt` once, or hold a conversation read line by line from `read`.

    Args:
        gguf: the model file.
        system: the system prompt; None takes the GGUF's (docpipe.system_prompt), "" sends none.
        prompt: a single question; None starts the conversation loop (an empty line, /exit, EOF
            or Ctrl-C end it, /reset forgets the earlier turns).
        max_tokens: the longest reply.
        temperature: sampling temperature, 0 for greedy.
        threads: CPU threads; default: default_threads().
        out: where replies go (default: sys.stdout at call time).
        read: reads one line, given the prompt to show.

    Raises:
        ChatError: the file does not load, has no chat template, or a one-shot question does not fit.
    """
    out = out or sys.stdout
    threads = threads or default_threads()
    quiet_llama_logs()
    try:
        llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=CONTEXT_TOKENS, n_threads=threads, n_threads_batch=threads, verbose=False)
    except (ValueError, RuntimeError) as exc:  # not a model, an architecture this llama.cpp lacks
        raise ChatError(f"cannot load {gguf}: {exc}") from exc
    try:
        fmt = ChatFormat.from_gguf(llm)
        system = llm.metadata.get(SYSTEM_PROMPT) if system is None else system
        head = [{"role": "system", "content": system}] if system else []
        history: list[Message] = []

        def ask(question: str) -> None:
            messages = fit_context(llm, [*head, *history, {"role": "user", "content": question}], max_tokens, fmt)
            reply = []
            for piece in stream_reply(
                llm, messages, max_tokens=max_tokens, temperature=temperature, top_p=TOP_P, repeat_penalty=REPEAT_PENALTY, fmt=fmt
            ):
                out.write(piece)
                out.flush()
                reply.append(piece)
            out.write("\n")
            history[:] = [*messages[len(head) :], {"role": "assistant", "content": "".join(reply)}]

        if prompt is not None:
            ask(prompt)
        else:
            _converse(ask, history, out, read)
    finally:
        llm.close()  # left to the garbage collector, it raises a TypeError at interpreter exit


def _converse(ask: Callable[[str], None], history: list[Message], out: TextIO, read: Callable[[str], str]) -> None:
    out.write("Ask a question (/reset forgets the conversation; an empty line, /exit or Ctrl-D ends).\n")
    try:
        while (line := read("> ").strip()) and line != "/exit":
            if line == "/reset":
                history.clear()
                continue
            try:
                ask(line)
            except ChatError as exc:  # a question too long ends that question, not the conversation
                out.write(f"error: {exc}\n")
    except (EOFError, KeyboardInterrupt):
        out.write("\n")


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
