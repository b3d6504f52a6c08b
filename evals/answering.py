"""A model's answers to evaluation questions, asked as training asks them (the training chat template and
system prompt) and decoded greedily: through transformers (base + adapter in float32, the reference) or
llama.cpp on a GGUF (the fast path on CPU; `make_gguf` writes one of a base or a run). Each answer is
cached by model, prompt and settings, so an interrupted evaluation repeats none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from docpipe.store import JsonCache, atomic_file, sha256_file, stable_hash
from evals import EvalError

Message = dict[str, str]
Progress = Callable[[int, int], None]  # (questions answered so far, questions in all)

BATCH_SIZE = 8  # transformers on CPU; see `TransformersAnswerer`
CONTEXT_TOKENS = 4096  # llama.cpp's context: the prompt and the answer share it
# Tokens llama.cpp ends a turn at besides the vocabulary's EOS (its end-of-generation list, llama-vocab.cpp);
# transformers stops at the same ones, so that both engines end the same answers in the same place.
END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<|end_of_text|>", "<EOT>")


@dataclass(frozen=True)
class Answer:
    text: str  # the reply, special tokens left out
    tokens: list[int]  # its token ids, without the end-of-turn token
    finished: bool  # it ended its turn; False: cut at max_tokens


class Answerer(Protocol):
    engine: str  # "transformers" | "llama.cpp": part of the cache key
    model_hash: str  # the weights, tokenizer and template answered with: part of the cache key
    batch_size: int  # prompts per `answer` call

    def answer(self, prompts: list[list[Message]], max_tokens: int) -> list[Answer]: ...

    def close(self) -> None: ...


def messages(question: str, system: str) -> list[Message]:
    """The chat a question is asked in: the training system prompt ("" for none), then the question."""
    return [*([{"role": "system", "content": system}] if system else []), {"role": "user", "content": question}]


def answer_questions(
    answerer: Answerer,
    questions: Sequence[str],
    *,
    system: str,
    max_tokens: int,
    cache: JsonCache | None = None,
    progress: Progress | None = None,
) -> list[Answer]:
    """Every question's answer, in order; cached answers are reused and new ones cached as they come.

    Args:
        answerer: the model (`TransformersAnswerer` or `LlamaCppAnswerer`).
        questions: what to ask; a question asked twice is answered once.
        system: the system prompt training used (the dataset's first record's; "" when it had none).
        max_tokens: the longest answer, in tokens.
        cache: answers by model hash, prompt and settings (`Layout.answers_cache`); None caches nothing.
        progress: called with (done, total) once for the answers found in the cache, then after each new one.
    """
    prompts = [messages(q, system) for q in questions]
    keys = [answer_key(answerer, prompt, max_tokens) for prompt in prompts]
    found: dict[str, Answer] = {}
    for key in dict.fromkeys(keys):
        record = cache.get(key) if cache is not None else None
        try:
            found[key] = Answer(**record)
        except TypeError:  # a miss, or a record of another shape: answered again
            continue
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)
    todo = [i for key, i in first.items() if key not in found]
    todo.sort(key=lambda i: len(questions[i]))  # batches of like lengths waste little on padding
    total, done = len(questions), sum(key in found for key in keys)
    _report(progress, done, total)
    for start in range(0, len(todo), max(1, answerer.batch_size)):
        batch = todo[start : start + max(1, answerer.batch_size)]
        for i, answer in zip(batch, answerer.answer([prompts[i] for i in batch], max_tokens), strict=True):
            found[keys[i]] = answer
            if cache is not None:
                cache.put(keys[i], asdict(answer))
            done += keys.count(keys[i])
            _report(progress, done, total)
    return [found[key] for key in keys]


def answer_key(answerer: Answerer, prompt: list[Message], max_tokens: int) -> str:
    """The cache key: engine, model, prompt and decoding settings."""
    return stable_hash("answer", answerer.engine, answerer.model_hash, prompt, {"decoding": "greedy", "max_tokens": max_tokens})


class TransformersAnswerer:
    """The reference: the base (with its adapter, unmerged, as trained) in float32, on a CUDA GPU when there is
    one, else on the CPU; prompts from `apply_chat_template`, greedy `generate` in left-padded batches. Torch's
    threads are the caller's to set.

    Batch 8 was the fastest of 1/4/8 on SmolLM2-135M on 2 cores (scripts/bench_eval.py).
    """

    engine = "transformers"

    def __init__(self, base: Path, adapter: Path | None = None, *, batch_size: int = BATCH_SIZE, model_hash: str | None = None):
        from docpipe.runtime.merge import load_trained

        try:
            self.model, self.tokenizer = load_trained(Path(base), Path(adapter) if adapter else None)
        except Exception as exc:  # noqa: BLE001 - safetensors, peft and transformers each raise their own kinds
            raise EvalError(f"cannot load the model to evaluate ({_first_line(exc)}): base {base}, adapter {adapter}") from exc
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.model_hash = model_hash or _files_hash(base, adapter)
        self.stop_ids = _stop_ids(self.tokenizer, self.model.generation_config)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.stop_ids[0] if self.stop_ids else None)
        self.batch_size = batch_size if self.pad_id is not None else 1  # no token to pad with: one prompt at a time

    def answer(self, prompts: list[list[Message]], max_tokens: int) -> list[Answer]:
        import torch
        from transformers import GenerationConfig

        ids = [self._prompt_ids(prompt) for prompt in prompts]
        width = max(len(row) for row in ids)
        pad = self.pad_id if self.pad_id is not None else 0
        inputs = torch.tensor([[pad] * (width - len(row)) + row for row in ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=self.device)
        config = GenerationConfig(max_new_tokens=max_tokens, do_sample=False, eos_token_id=self.stop_ids or None, pad_token_id=pad)
        with torch.inference_mode():
            out = self.model.generate(input_ids=inputs, attention_mask=mask, generation_config=config)
        return [self._answer(row[width:].tolist()) for row in out]

    def _prompt_ids(self, prompt: list[Message]) -> list[int]:
        return list(self.tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=False))

    def _answer(self, generated: list[int]) -> Answer:
        end = next((i for i, token in enumerate(generated) if token in self.stop_ids), None)
        tokens = generated if end is None else generated[:end]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return Answer(text=text, tokens=tokens, finished=end is not None)

    def close(self) -> None:
        self.model = None


class LlamaCppAnswerer:
    """A GGUF in llama-cpp-python: the prompt rendered with the GGUF's chat template as transformers renders it
    in training (the same token ids, exactly one BOS), greedy (temperature 0, no repeat penalty), stopping at an
    end-of-turn token. The shared system prompt stays in llama.cpp's cache from one question to the next."""

    engine = "llama.cpp"
    batch_size = 1

    def __init__(self, gguf: Path, *, threads: int | None = None, context_tokens: int = CONTEXT_TOKENS, model_hash: str | None = None):
        import llama_cpp

        from docpipe.runtime import llama

        threads = threads or llama.default_threads()
        llama.quiet_llama_logs()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(gguf), n_ctx=context_tokens, n_threads=threads, n_threads_batch=threads, verbose=False
            )
        except (ValueError, RuntimeError) as exc:  # not a model, an architecture this llama.cpp lacks
            raise EvalError(f"cannot load {gguf} in llama.cpp: {exc}") from exc
        self.format = llama.ChatFormat.from_gguf(self.llm)
        self.model_hash = model_hash or sha256_file(Path(gguf))
        self._llama = llama

    def answer(self, prompts: list[list[Message]], max_tokens: int) -> list[Answer]:
        return [self._answer(prompt, max_tokens) for prompt in prompts]

    def prompt_ids(self, prompt: list[Message]) -> list[int]:
        return self._llama.prompt_tokens(self.llm, prompt, self.format)

    def _answer(self, prompt: list[Message], max_tokens: int) -> Answer:
        ids = self.prompt_ids(prompt)
        room = min(max_tokens, self.llm.n_ctx() - len(ids))
        tokens = list(self._llama.reply_tokens(self.llm, ids, max_tokens=max_tokens, temperature=0.0))
        text = "".join(self._llama.decode_utf8(self.llm.detokenize([token]) for token in tokens))
        return Answer(text=text, tokens=tokens, finished=len(tokens) < room)

    def close(self) -> None:
        self.llm.close()  # left to the garbage collector, it raises a TypeError at interpreter exit


def make_gguf(
    base: Path, adapter: Path | None, dest: Path, source_gguf: Path | None = None, *, system_prompt: str | None = None, dtype: str = "f16"
) -> Path:
    """A GGUF of the base (no adapter) or of base + adapter merged, with the training chat template, written
    atomically to `dest` through the export's writer; a file already at `dest` is reused.

    Args:
        base: the base model's HF folder.
        adapter: the run's peft adapter folder, or None for the base alone.
        dest: where the file goes (`Layout.eval_gguf(run_id, label)`).
        source_gguf: the GGUF a packaged base was converted from (`pretrained.source_gguf`): its tokenizer
            and hyperparameters are copied.
        system_prompt: written as docpipe.system_prompt (what `docpipe chat` starts with), when given.
        dtype: f16, bf16 or f32.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    from docpipe.runtime import gguf_vocab, gguf_writer
    from docpipe.runtime.merge import load_trained, merged_state

    model, tokenizer = load_trained(Path(base), Path(adapter) if adapter else None)
    if not isinstance(tokenizer.chat_template, str):
        raise EvalError(f"the base model at {base} has no chat template: it cannot be asked questions as training asked them")
    fields = [
        *gguf_vocab.tokenizer_fields(source_gguf, Path(base), tokenizer, model.config.vocab_size),
        *gguf_vocab.chat_fields(tokenizer.chat_template, system_prompt),
    ]
    config, state = model.config, merged_state(model)
    with atomic_file(dest) as tmp:
        gguf_writer.write_gguf(tmp, state, config, fields, dtype=dtype, source=source_gguf)
    return dest


def _stop_ids(tokenizer: Any, generation_config: Any) -> list[int]:
    """The model's EOS ids, the tokenizer's, and its special tokens that end a turn."""
    eos = generation_config.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    special = {token.content: i for i, token in tokenizer.added_tokens_decoder.items() if token.special}
    ids += [special[text] for text in END_OF_TURN if text in special]
    return list(dict.fromkeys(ids))


def _files_hash(*folders: Path | None) -> str:
    """The files of the base and adapter folders, by content: what the answers depend on."""
    files = [p for folder in folders if folder for p in sorted(Path(folder).iterdir()) if p.is_file()]
    return stable_hash([(p.name, sha256_file(p)) for p in files])


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
