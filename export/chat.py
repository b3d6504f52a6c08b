"""`docpipe chat`: talk to an exported GGUF in llama-cpp-python, its chat template rendered as
transformers renders it in training (docpipe.runtime.llama), the reply streamed as it is generated."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

try:
    import llama_cpp
except ImportError as exc:
    raise ImportError("docpipe chat needs llama-cpp-python: pip install 'docpipe[local]'") from exc

from docpipe.runtime.gguf_vocab import SYSTEM_PROMPT
from docpipe.runtime.llama import ChatError, ChatFormat, Message, default_threads, prompt_tokens, quiet_llama_logs, stream_reply

__all__ = ["SYSTEM_PROMPT", "ChatError", "chat", "fit_context"]  # the CLI's and tests' names for what moved to the runtime

CONTEXT_TOKENS = 4096  # within every supported base's training context; prompt and reply share it
TOP_P = 0.9  # as the exported Modelfile (export.top_p)
REPEAT_PENALTY = 1.1


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
