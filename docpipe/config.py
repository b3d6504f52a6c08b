"""Run configuration: YAML in configs/ -> pydantic (unknown keys fail) -> CLI overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docpipe.errors import DocpipeError
from docpipe.store import first_problem

M = TypeVar("M", bound=BaseModel)
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: Annotated[int | None, Field(ge=1, le=256, description="Parser processes; empty = one per core, bounded by free memory.")] = (
        None
    )
    timeout_s: Annotated[
        float, Field(gt=0, le=86400, description="Seconds one file may take before its worker is killed and the file reported.")
    ] = 300
    max_rss_mb: Annotated[
        int, Field(ge=256, le=1048576, description="Memory one parser process (with its children) may use before it is killed.")
    ] = 6144
    max_file_mb: Annotated[int, Field(ge=1, le=1048576, description="Files larger than this are skipped with a reason.")] = 512
    max_unzipped_mb: Annotated[
        int,
        Field(
            ge=1,
            le=1048576,
            description="Largest total uncompressed size accepted for a zip or an Office/OpenDocument package (zip-bomb guard).",
        ),
    ] = 512
    max_zip_members: Annotated[int, Field(ge=1, le=1000000, description="Most members read from one zip archive.")] = 2000
    min_chars: Annotated[
        int,
        Field(
            ge=0, le=100000, description="An engine that yields fewer non-space characters than this has failed; the next engine is tried."
        ),
    ] = 16
    ocr: Annotated[bool, Field(description="OCR images and scanned PDF pages with Tesseract.")] = True
    ocr_languages: Annotated[str, Field(description="Tesseract language codes, '+'-joined (e.g. 'eng+deu').")] = "eng"
    engines: Annotated[
        dict[str, list[str]], Field(description="Per-format engine order overriding the built-in routing, e.g. {pdf: [unstructured]}.")
    ] = {}
    include_hidden: Annotated[bool, Field(description="Also read files and folders whose names start with a dot.")] = False


class LLMConfig(BaseModel):
    """Which model writes questions, and how the gateway treats it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Annotated[
        str,
        Field(
            description=(
                "'auto' = the packaged local model when installed, else the built-in extractive generator alone; "
                "'none' = the extractive generator alone; a path to a .gguf file = that model in-process (llama-cpp-python); "
                "anything else is a litellm model string, e.g. 'openai/gpt-4o-mini', 'anthropic/claude-3-5-haiku-latest', 'ollama/llama3.1'."
            )
        ),
    ] = "auto"
    api_base: Annotated[
        str | None,
        Field(description="Base URL of an OpenAI-compatible server (vLLM, llama.cpp server, Ollama); keys come from the environment only."),
    ] = None
    temperature: Annotated[float, Field(ge=0, le=2, description="Sampling temperature.")] = 0.2
    max_tokens: Annotated[int, Field(ge=16, le=131072, description="Most tokens in one reply.")] = 768
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Sampling seed, where the provider honours one.")] = 0
    timeout_s: Annotated[
        float, Field(gt=0, le=86400, description="Seconds one call may take before it counts as failed and is retried.")
    ] = 120
    max_retries: Annotated[
        int, Field(ge=0, le=100, description="Retries of a failed call (timeouts, 429, 5xx), with exponential backoff.")
    ] = 4
    backoff_s: Annotated[
        float,
        Field(ge=0, le=3600, description="First backoff delay; doubled on each retry, with jitter. A 429's Retry-After wins when given."),
    ] = 1.0
    backoff_max_s: Annotated[float, Field(ge=0, le=86400, description="Longest backoff delay.")] = 60
    rpm: Annotated[int | None, Field(ge=1, le=1000000, description="Requests per minute allowed; empty = no limit.")] = None
    tpm: Annotated[int | None, Field(ge=1, le=1000000000, description="Tokens per minute allowed (prompt + reply); empty = no limit.")] = (
        None
    )
    concurrency: Annotated[int, Field(ge=1, le=1024, description="Calls in flight at once (a local model always runs one at a time).")] = 4
    threads: Annotated[int | None, Field(ge=1, le=1024, description="CPU threads of a local model; empty = chosen for the machine.")] = None
    context_tokens: Annotated[int, Field(ge=512, le=1048576, description="Context window of a local model.")] = 2048


class GenerateConfig(BaseModel):
    """Turning chunks into a curated Q&A dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_tokens: Annotated[int, Field(ge=32, le=8192, description="Most tokens in one chunk; chunks never cross a heading.")] = 384
    pairs_per_fact: Annotated[
        float,
        Field(
            gt=0,
            le=20,
            description="Pairs asked for per information unit (sentence, list item, table row) of a chunk: 1 = every fact asked about.",
        ),
    ] = 1.0
    min_pairs_per_chunk: Annotated[int, Field(ge=1, le=64, description="Fewest pairs asked for from a chunk with any content.")] = 1
    max_pairs_per_chunk: Annotated[int, Field(ge=1, le=64, description="Most pairs asked for from one chunk.")] = 10
    min_support: Annotated[float, Field(ge=0, le=1, description="Share of the answer's content words that must appear in its quote.")] = 0.6
    min_question_chars: Annotated[int, Field(ge=1, le=10000, description="Shorter questions are rejected.")] = 12
    max_question_chars: Annotated[int, Field(ge=1, le=10000, description="Longer questions are rejected.")] = 300
    min_answer_chars: Annotated[int, Field(ge=1, le=100000, description="Shorter answers are rejected.")] = 2
    max_answer_chars: Annotated[int, Field(ge=1, le=100000, description="Longer answers are rejected.")] = 1200
    dedup_threshold: Annotated[
        float,
        Field(gt=0, le=1, description="Jaccard similarity above which two questions (or two question+answer texts) are near-duplicates."),
    ] = 0.8
    model_trial_chunks: Annotated[
        int, Field(ge=1, le=100000, description="Chunks the model writes for before it is compared with the extractive generator.")
    ] = 4
    model_trial_margin: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="The model writes the other chunks only when the share of its trial pairs that pass the checks is at most this far below the extractive generator's on the same chunks; else the extractive generator writes them.",
        ),
    ] = 0.15
    judge: Annotated[
        bool,
        Field(description="Also ask the LLM whether each answer follows from its quote (the judge sees only the quote and the answer)."),
    ] = False
    holdout: Annotated[
        Literal["questions", "sections"],
        Field(
            description="What evaluation holds out: 'questions' (every chunk is trained on; held out are one wording of each fact and, for a sample of chunks, one fact never asked) or 'sections' (whole sections never trained on: a diagnostic only)."
        ),
    ] = "questions"
    eval_fraction: Annotated[
        float,
        Field(
            gt=0,
            lt=1,
            description="holdout 'questions': share of the facts never asked in training (the unseen-question set; one per chunk at most, at least 10 when the corpus has them); 'sections': share of pairs in held-out sections.",
        ),
    ] = 0.15
    phrasings_per_fact: Annotated[
        int, Field(ge=1, le=16, description="Question wordings trained per fact (one more is held out as the rephrased question).")
    ] = 3
    rehearsal: Annotated[bool, Field(description="Also train on each chunk's own text, prompted by its document and section.")] = True
    refusal_share: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="Out-of-corpus questions answered 'The documents do not say.' added to training, as a share of the Q&A examples (from a bank kept apart from the evaluation's).",
        ),
    ] = 0.1
    paraphrase_probes: Annotated[
        int, Field(ge=0, le=100000, description="Most rephrased questions (held-out wordings of trained facts) written for evaluation.")
    ] = 1000
    abstention_probes: Annotated[
        int, Field(ge=0, le=100000, description="Out-of-corpus questions whose expected answer is an abstention.")
    ] = 30
    dpo: Annotated[
        bool, Field(description="Write DPO preference pairs (grounded answer chosen, ungrounded or miscited answer rejected).")
    ] = True
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Seed for splits and sampling.")] = 0


class TrainConfig(BaseModel):
    """Fine-tuning a base model on the dataset (LoRA; QLoRA on CUDA), then optionally DPO."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_model: Annotated[
        str,
        Field(
            description="A packaged base ('smollm2-135m-instruct', or 'gemma-3-270m' once requirements/gemma.txt is installed), a local Hugging Face model folder, or an id already in the local Hugging Face cache; never downloaded."
        ),
    ] = "smollm2-135m-instruct"
    backend: Annotated[
        Literal["auto", "hf", "unsloth", "mlx"],
        Field(
            description="'auto' = unsloth on CUDA (hf when unsloth is not installed), mlx on Apple Silicon, hf (transformers + peft) otherwise."
        ),
    ] = "auto"
    device: Annotated[
        Literal["auto", "cpu", "cuda", "mps"], Field(description="Where the hf backend trains; 'auto' = the best the machine has.")
    ] = "auto"
    epochs: Annotated[
        float | None,
        Field(
            gt=0,
            le=100,
            description="Passes over the training examples; empty = enough for `target_exposures` per fact, within `time_budget_minutes`.",
        ),
    ] = None
    target_exposures: Annotated[
        int,
        Field(
            ge=1,
            le=1000,
            description="When epochs are not given: times each fact is to be seen in training, all its wordings counted (wordings x epochs).",
        ),
    ] = 12
    time_budget_minutes: Annotated[
        float | None,
        Field(
            gt=0,
            le=10**6,
            description="When epochs are not given: the most training time the epochs are chosen for, at the backend's measured tokens/s; empty = no limit.",
        ),
    ] = 20
    max_steps: Annotated[
        int | None, Field(ge=1, le=10000000, description="Stop after this many optimiser steps (overrides epochs); for smoke runs.")
    ] = None
    batch_size: Annotated[
        int,
        Field(
            ge=1, le=1024, description="Pairs per optimiser step; batches group pairs of similar length so little compute goes to padding."
        ),
    ] = 8
    learning_rate: Annotated[
        float, Field(gt=0, le=10, description="Peak learning rate of the LoRA weights (linear decay after a short warm-up).")
    ] = 2e-4
    lora_rank: Annotated[int, Field(ge=1, le=1024, description="LoRA rank r.")] = 16
    lora_alpha: Annotated[float, Field(gt=0, le=4096, description="LoRA alpha; the update is scaled by alpha / r.")] = 32
    lora_dropout: Annotated[
        float,
        Field(
            ge=0,
            lt=1,
            description="Dropout on the LoRA input; 0 by default: 0.05 made CPU steps 23% slower, and early stopping already guards against overfitting.",
        ),
    ] = 0.0
    qlora: Annotated[bool, Field(description="Load the base in 4 bits (QLoRA); unsloth backend on CUDA only.")] = False
    max_seq_tokens: Annotated[
        int, Field(ge=32, le=1048576, description="Longest training sequence in tokens; longer pairs are truncated.")
    ] = 1024
    evals_per_epoch: Annotated[int, Field(ge=1, le=100, description="Held-out loss measurements per epoch.")] = 2
    eval_max_pairs: Annotated[
        int, Field(ge=1, le=1000000, description="Held-out pairs scored at each measurement (a fixed sample, so the curve is comparable).")
    ] = 256
    early_stopping_patience: Annotated[
        int, Field(ge=1, le=1000, description="Stop after this many held-out measurements without improvement; the best adapter is kept.")
    ] = 2
    checkpoint_minutes: Annotated[
        float,
        Field(
            ge=0, le=10**7, description="Save a resumable checkpoint at least this often (0 = every step; a huge value = only at the end)."
        ),
    ] = 5
    threads: Annotated[int | None, Field(ge=1, le=1024, description="CPU threads; empty = the cores not busy with other work.")] = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Seed for LoRA initialisation, shuffling and dropout.")] = 0
    dpo: Annotated[
        bool, Field(description="After SFT, run DPO on dataset/dpo.jsonl, continuing the SFT adapter (the SFT model is the reference).")
    ] = False
    dpo_beta: Annotated[float, Field(gt=0, le=10, description="DPO beta: how far the tuned model may move from the SFT reference.")] = 0.1
    dpo_learning_rate: Annotated[float, Field(gt=0, le=10, description="Peak learning rate during DPO.")] = 2e-5
    dpo_epochs: Annotated[float, Field(gt=0, le=100, description="Passes over the preference pairs.")] = 1
    dpo_max_pairs: Annotated[
        int | None, Field(ge=1, le=10000000, description="Use at most this many preference pairs (a seeded sample); empty = all.")
    ] = None


class ParityThresholds(BaseModel):
    """When an exported file fails the parity gate (export.parity): its token ids must always match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_top1: Annotated[
        float, Field(ge=0, le=1, description="Least share of positions where the GGUF's most likely next token is the trained model's.")
    ]
    max_mean_kl: Annotated[
        float, Field(ge=0, le=100, description="Largest mean KL divergence (trained || GGUF) over all positions, in nats.")
    ]


class ExportConfig(BaseModel):
    """GGUF files, the parity gate and the Ollama Modelfile (`docpipe export`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[
        str | None,
        Field(
            description="Model name for files and `ollama create` (lowercase letters, digits, '.', '-', '_'); empty = from the output folder's name."
        ),
    ] = None
    run: Annotated[str | None, Field(description="Run id under runs/ to export; empty = the latest finished run.")] = None
    quantizations: Annotated[
        list[Literal["f16", "bf16", "f32", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0"]],
        Field(
            min_length=1,
            description="GGUF files to write; the first of f16/bf16/f32 listed is written with gguf-py, the rest quantised from it with llama.cpp.",
        ),
    ] = ["f16", "q8_0", "q4_k_m"]
    modelfile_quantization: Annotated[str, Field(description="The GGUF the Modelfile's FROM names; must be in quantizations.")] = "q8_0"
    parity_chats: Annotated[int, Field(ge=1, le=10000, description="Held-out conversations the parity gate compares logits on.")] = 8
    parity_max_tokens: Annotated[int, Field(ge=16, le=131072, description="Tokens per parity conversation (longer ones are cut).")] = 256
    gate: Annotated[
        dict[str, ParityThresholds],
        Field(description="Thresholds that fail the export, per quantisation; the others' figures are reported only."),
    ] = {
        # Measured on fine-tuned SmolLM2-135M / Gemma-3-270M: f16 top-1 0.991 / 1.000, mean KL 8e-6 / 4e-6;
        # q8_0 0.912 / 0.909, 0.0056 / 0.0147; q4_k_m 0.864 / 0.841, 0.069 / 0.108. A transposed rotary
        # layout (a planted bug) gave top-1 0.03 and KL 4.4.
        "f16": ParityThresholds(min_top1=0.97, max_mean_kl=1e-3),
        "bf16": ParityThresholds(min_top1=0.95, max_mean_kl=5e-3),
        "f32": ParityThresholds(min_top1=0.99, max_mean_kl=1e-4),
        "q8_0": ParityThresholds(min_top1=0.85, max_mean_kl=0.05),
    }
    temperature: Annotated[
        float, Field(ge=0, le=2, description="Ollama sampling temperature: low, for factual answers from the documents.")
    ] = 0.2
    top_p: Annotated[float, Field(gt=0, le=1, description="Ollama nucleus sampling.")] = 0.9
    repeat_penalty: Annotated[float, Field(gt=0, le=2, description="Small models loop without one.")] = 1.1
    num_ctx: Annotated[
        int | None, Field(ge=256, le=1048576, description="Ollama context window; empty = the training context (train.max_seq_tokens).")
    ] = None
    threads: Annotated[
        int | None, Field(ge=1, le=1024, description="CPU threads for quantising and the parity runs; empty = the cores not busy.")
    ] = None


class EvalConfig(BaseModel):
    """Evaluating a trained run (`docpipe eval`): which questions, how answers are made, and the verdict's thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: Annotated[str | None, Field(description="Run id under runs/ to evaluate; empty = the latest finished run.")] = None
    seen_questions: Annotated[
        int, Field(ge=0, le=100000, description="Training questions asked again, a fixed seeded sample (the 'seen' set).")
    ] = 50
    max_questions_per_set: Annotated[
        int, Field(ge=1, le=100000, description="Most questions asked from each set (a seeded sample), to bound the time.")
    ] = 200
    max_answer_tokens: Annotated[int, Field(ge=8, le=4096, description="Longest answer generated, in tokens (greedy decoding).")] = 128
    engine: Annotated[
        Literal["auto", "llama.cpp", "transformers"],
        Field(
            description="'auto' = llama.cpp on GGUFs of the run when llama-cpp-python is installed (fast on CPU), else transformers (base + adapter)."
        ),
    ] = "auto"
    threads: Annotated[int | None, Field(ge=1, le=1024, description="CPU threads for generation; empty = the cores not busy.")] = None
    gguf_type: Annotated[
        Literal["f16", "q8_0"],
        Field(
            description="The GGUF type llama.cpp answers with, for base and tuned alike. f16 (default): the trained model's answers "
            "(98 of 100 greedy answers equal transformers', scripts/bench_eval.py); q8_0: 20% faster, but only 37 of 100 equal, "
            "as greedy decoding drifts: the export's Q8_0 is compared with the trained model instead."
        ),
    ] = "f16"
    correct_key_facts: Annotated[
        float,
        Field(
            gt=0,
            le=1,
            description="An answer to an answerable question is correct when at least this share of the reference's content words and numbers is in it.",
        ),
    ] = 0.5
    min_questions: Annotated[
        int,
        Field(
            ge=1,
            le=100000,
            description="A set with fewer questions is called too small to say anything; the verdict is insufficient-data when the rephrased and unseen sets together have fewer.",
        ),
    ] = 20
    overfit_gap: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="Seen-set accuracy minus rephrased-set accuracy above which the model is called overfit (it learned wordings, not facts).",
        ),
    ] = 0.25
    max_regurgitation: Annotated[
        float, Field(ge=0, le=1, description="Share of answers copying another training answer above which the model is called overfit.")
    ] = 0.2
    min_citation_validity: Annotated[
        float, Field(ge=0, le=1, description="Share of cited answers naming the right document below which the model is called ungrounded.")
    ] = 0.7
    min_abstention: Annotated[
        float,
        Field(
            ge=0,
            le=1,
            description="Share of out-of-corpus questions answered with an abstention below which the model is called ungrounded (it invents).",
        ),
    ] = 0.5
    max_over_refusal: Annotated[
        float,
        Field(
            ge=0, le=1, description="Share of answerable questions met with an abstention above which the model is called over-refusing."
        ),
    ] = 0.3
    confidence: Annotated[float, Field(gt=0.5, lt=1, description="Confidence level of every interval.")] = 0.95
    bootstrap_samples: Annotated[int, Field(ge=100, le=100000, description="Bootstrap resamples behind each interval.")] = 2000
    regurgitation_ngram: Annotated[
        int,
        Field(
            ge=3, le=50, description="An answer sharing a run of this many words with the training answer of another question copies it."
        ),
    ] = 8
    seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="Seed for the question samples and the bootstrap.")] = 0


class DocpipeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ingest: Annotated[IngestConfig, Field(description="Reading documents.")] = IngestConfig()
    llm: Annotated[LLMConfig, Field(description="The model that writes questions, and the gateway's limits.")] = LLMConfig()
    generate: Annotated[GenerateConfig, Field(description="Chunking, Q&A generation and curation.")] = GenerateConfig()
    train: Annotated[TrainConfig, Field(description="Fine-tuning.")] = TrainConfig()
    eval: Annotated[EvalConfig, Field(description="Evaluating a trained run.")] = EvalConfig()
    export: Annotated[ExportConfig, Field(description="GGUF export and the Ollama Modelfile.")] = ExportConfig()


def updated(cfg: M, **changes: Any) -> M:
    """A new config with `changes`, validated again (configs are frozen: a change is a new value)."""
    try:
        return type(cfg).model_validate({**cfg.model_dump(), **changes})
    except ValidationError as exc:
        raise ConfigError(f"invalid change to {type(cfg).__name__}: {first_problem(exc)}") from None


class ConfigError(DocpipeError, ValueError):
    """A config file or override that cannot be used; the message says what to fix."""

    stage = "config"


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> DocpipeConfig:
    """Load YAML (the default preset when no path is given), then apply CLI overrides.

    Overrides use dotted keys (`{"ingest.workers": 2}`); None values are ignored so that
    unset CLI options do not override the file.
    """
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        if path != DEFAULT_CONFIG:
            raise ConfigError(f"config file not found: {path}") from None
        data = {}  # installed from a wheel, without the repository's configs/: same values (tested)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        data = _merge(data, nested)
    try:
        return DocpipeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_problem(exc)} ({exc.error_count()} problem(s) in all)") from None
