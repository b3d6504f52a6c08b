"""The pydantic records that pass between stages. Imports nothing heavy."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer, model_validator


class ElementKind(str, Enum):
    title = "title"
    text = "text"
    list_item = "list_item"
    table = "table"
    header = "header"
    footer = "footer"
    code = "code"
    caption = "caption"
    email_header = "email_header"
    image_text = "image_text"
    other = "other"


class DocStatus(str, Enum):
    ok = "ok"
    partial = "partial"  # some text came out, with a warning (e.g. a zip with an unreadable member)
    failed = "failed"
    skipped = "skipped"  # not a document we read (unsupported type, symlink out of the folder)


class Element(BaseModel):
    """One structural piece of a document, with its exact place in `Document.text`."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[ElementKind, Field(description="Structural role of the element.")]
    text: Annotated[str, Field(description="The element's text; equals Document.text[start:end].")]
    start: Annotated[int, Field(ge=0, description="Character offset of the element in Document.text.")]
    end: Annotated[int, Field(ge=0, description="Character offset one past the element's end.")]
    page: Annotated[int | None, Field(description="1-based page (or slide/sheet) number, when the format has pages.")] = None
    section: Annotated[list[str], Field(description="Heading path from the document root to this element.")] = []


class Document(BaseModel):
    """What ingestion made of one file: its text, its elements, or why it could not be read."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(description="Path relative to the input folder (members of a zip: 'a.zip!/inner.txt').")]
    sha256: Annotated[str, Field(description="SHA-256 of the file's bytes.")]
    size: Annotated[int, Field(ge=0, description="File size in bytes.")]
    format: Annotated[str, Field(description="Format detected from the content (e.g. 'pdf'), not only the extension.")]
    engine: Annotated[str | None, Field(description="Parser that produced the text (unstructured, kreuzberg, ...).")] = None
    status: Annotated[DocStatus, Field(description="ok | partial | failed | skipped.")]
    reason: Annotated[str | None, Field(description="One line on why the file failed or is partial; null when ok.")] = None
    text: Annotated[str, Field(description="The document's full text; element offsets point into it.")] = ""
    elements: Annotated[list[Element], Field(description="Structural elements in reading order.")] = []
    pages: Annotated[int | None, Field(description="Number of pages, when known.")] = None
    attempts: Annotated[list[str], Field(description="Engines tried, each with its outcome, in order.")] = []
    seconds: Annotated[float, Field(ge=0, description="Wall time spent parsing this file.")] = 0.0

    @model_validator(mode="after")
    def _offsets_point_into_text(self) -> Document:
        for el in self.elements:
            if self.text[el.start : el.end] != el.text:
                raise ValueError(f"element at {el.start}:{el.end} does not match the document text")
        return self

    @property
    def doc_id(self) -> str:
        """Stable id of this document version: later stages cite it."""
        return self.sha256[:16]


class Chunk(BaseModel):
    """A piece of one document that a question can be asked about, with where it came from."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(description="Content hash of the document version and the span: stable across runs.")]
    doc_id: Annotated[str, Field(description="Document.doc_id of the source document.")]
    path: Annotated[str, Field(description="Source path relative to the input folder.")]
    text: Annotated[str, Field(description="The chunk's text; equals the document's text[start:end].")]
    start: Annotated[int, Field(ge=0, description="Character offset in the document's text.")]
    end: Annotated[int, Field(ge=0, description="Character offset one past the chunk's end.")]
    pages: Annotated[list[int], Field(description="Pages the chunk spans, in order (empty when the format has none).")] = []
    section: Annotated[list[str], Field(description="Heading path of the chunk's body.")] = []
    tokens: Annotated[int, Field(ge=0, description="Length in tokens of the tokenizer it was sized with.")]


class FormatSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: int = 0
    ok: int = 0
    partial: int = 0
    failed: int = 0
    skipped: int = 0
    engines: dict[str, int] = {}
    reasons: list[str] = []


class IngestReport(BaseModel):
    """Per-format outcome of one ingestion run, written to ingest_report.json."""

    model_config = ConfigDict(extra="forbid")

    input_dir: str
    files: int
    parsed: int = Field(description="Files that gave text (ok or partial).")
    reused: int = Field(description="Files taken from the cache because their content and settings had not changed.")
    bytes: int
    seconds: float
    formats: dict[str, FormatSummary]
    failures: dict[str, str] = Field(description="path -> one-line reason, for every failed or skipped file.")


class Citation(BaseModel):
    """Where an answer comes from: a verbatim quote and its exact place in the ingested document."""

    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(description="Source path relative to the input folder.")]
    doc_id: Annotated[str, Field(description="Document.doc_id of the source document version.")]
    page: Annotated[int | None, Field(description="1-based page (slide, sheet) the quote starts on, when the format has pages.")] = None
    quote: Annotated[str, Field(description="The quoted text; equals the document's text[start:end].")]
    start: Annotated[int, Field(ge=0, description="Character offset of the quote in the ingested document's text.")]
    end: Annotated[int, Field(ge=0, description="Character offset one past the quote's end.")]


class QADraft(BaseModel):
    """A question, its answer and the quote said to support it, as a generator wrote them: nothing checked yet.

    The extractive rules, the QA agent's reply schema and the curation step all pass this triple on
    (each subclass adds what it knows); curation turns it into a QAPair or a rejection.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: Annotated[str, Field(description="The question, as a user would ask it.")]
    answer: Annotated[str, Field(description="The answer, in the words of the source.")]
    quote: Annotated[str, Field(description="The source text said to contain the answer; checked against the source later.")]


class QAPair(BaseModel):
    """One question/answer candidate with its citation and who produced it."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(description="Stable id: hash of the chunk id, the question and the answer.")]
    question: Annotated[str, Field(description="The question, as a user would ask it.")]
    answer: Annotated[str, Field(description="The answer, without the source reference (added when rendered for training).")]
    citation: Annotated[Citation, Field(description="The quote that supports the answer.")]
    chunk_id: Annotated[str, Field(description="Chunk.id of the chunk the pair was written from.")]
    section: Annotated[list[str], Field(description="Heading path of the chunk.")] = []
    tier: Annotated[str, Field(description="Agent tier that produced the pair: structured | json | heuristic.")]
    producer: Annotated[str, Field(description="Model name, or 'extractive' for the built-in generator.")]


class Message(BaseModel):
    """One chat turn, in the role/content form chat templates and TRL take."""

    model_config = ConfigDict(extra="forbid")

    role: Annotated[Literal["system", "user", "assistant"], Field(description="Who speaks.")]
    content: Annotated[str, Field(description="What is said.")]


def _ends_with(messages: list[Message], role: str, what: str) -> None:
    if messages and messages[-1].role != role:
        raise ValueError(f"{what} must end with the {role}'s message, not the {messages[-1].role}'s")


RecordKind = Literal["qa", "rehearsal", "refusal"]


class TrainingRecord(QAPair):
    """One line of dataset/train.jsonl or eval.jsonl: the accepted pair and the chat example trained on.

    Besides question/answer pairs (`qa`), train.jsonl holds the chunks' own text (`rehearsal`: the
    model reads the source, not only questions about it) and out-of-corpus questions answered with the
    abstention (`refusal`: the model learns to say when the documents do not say)."""

    kind: Annotated[RecordKind, Field(description="qa | rehearsal (a chunk's text) | refusal (an out-of-corpus question).")] = "qa"
    fact_id: Annotated[
        str | None,
        Field(description="qa: the fact asked about (chunk and quote), shared by every wording of it; its exposures are counted by it."),
    ] = None

    messages: Annotated[list[Message], Field(min_length=2, description="System prompt, question, and the answer with its source line.")]

    @model_validator(mode="after")
    def _answer_last(self) -> TrainingRecord:
        _ends_with(self.messages, "assistant", "messages")
        return self


class PreferencePair(BaseModel):
    """One line of dataset/dpo.jsonl, in TRL's conversational preference format (plus its id and kind)."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(description="QAPair.id of the train pair the preference is about.")]
    prompt: Annotated[list[Message], Field(min_length=1, description="System prompt and question.")]
    chosen: Annotated[list[Message], Field(min_length=1, description="The grounded answer with its correct source line.")]
    rejected: Annotated[list[Message], Field(min_length=1, description="An ungrounded, uncited or miscited answer.")]
    rejected_kind: Annotated[str, Field(description="How the rejected answer fails: the model's own failure or a constructed one.")]

    @model_validator(mode="after")
    def _turns(self) -> PreferencePair:
        _ends_with(self.prompt, "user", "prompt")
        for name, turns in (("chosen", self.chosen), ("rejected", self.rejected)):
            if any(m.role != "assistant" for m in turns):
                raise ValueError(f"{name} must hold only the assistant's answer")
        return self


_PARAPHRASE_ONLY = ("source_id", "original_question", "citation", "chunk_id")


class Probe(BaseModel):
    """One line of dataset/probes_paraphrase.jsonl (a train question reworded) or probes_abstain.jsonl
    (a question the documents do not answer); the evaluation asks each and compares the reply."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(description="Stable id: hash of the kind and the question (and the source pair).")]
    kind: Annotated[
        Literal["paraphrase", "abstain"],
        Field(description="paraphrase: does the model know the fact, not only the phrasing; abstain: does it decline."),
    ]
    source_id: Annotated[str | None, Field(description="paraphrase: QAPair.id of the train pair reworded.")] = None
    question: Annotated[str, Field(description="The question asked.")]
    original_question: Annotated[str | None, Field(description="paraphrase: the train pair's question as trained on.")] = None
    answer: Annotated[str, Field(description="The expected answer: the train pair's (paraphrase) or the abstention (abstain).")]
    citation: Annotated[Citation | None, Field(description="paraphrase: the train pair's citation, which the reply should give.")] = None
    chunk_id: Annotated[str | None, Field(description="paraphrase: Chunk.id of the train pair's chunk.")] = None
    messages: Annotated[list[Message], Field(min_length=2, description="The chat example: system prompt, question, expected reply.")]

    @model_validator(mode="after")
    def _source_only_for_paraphrases(self) -> Probe:
        given = [name for name in _PARAPHRASE_ONLY if getattr(self, name) is not None]
        if self.kind == "paraphrase" and len(given) < len(_PARAPHRASE_ONLY):
            raise ValueError(f"a paraphrase probe needs {', '.join(n for n in _PARAPHRASE_ONLY if n not in given)}")
        if self.kind == "abstain" and given:
            raise ValueError(f"an abstention probe has no source pair, yet gives {', '.join(given)}")
        _ends_with(self.messages, "assistant", "messages")
        return self

    @model_serializer(mode="wrap")
    def _omit_absent_source(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.kind == "abstain":  # an abstention probe's line holds no empty source fields
            for name in _PARAPHRASE_ONLY:
                data.pop(name, None)
        return data


class ManifestSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Annotated[str, Field(description="Source path relative to the input folder.")]
    sha256: Annotated[str, Field(description="SHA-256 of the file's bytes.")]


class ManifestPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: Annotated[str, Field(description="Hash of the prompt text.")]
    text: Annotated[str, Field(description="The prompt, word for word.")]


class ManifestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(description="The model that wrote the pairs, or 'none (extractive generator)'.")]
    sha256: Annotated[
        str | None, Field(description="Hash of a local model's GGUF file; null for an API model (its name is all there is).")
    ] = None


class DatasetManifest(BaseModel):
    """What a dataset was made from, by hash (dataset/manifest.json): enough to tell whether two datasets can differ."""

    model_config = ConfigDict(extra="forbid")

    docpipe_version: Annotated[str, Field(description="The docpipe version that wrote the dataset.")]
    sources: Annotated[list[ManifestSource], Field(description="The documents that gave chunks with content.")]
    config: Annotated[dict[str, dict[str, Any]], Field(description="The effective `generate` and `llm` settings.")]
    prompts: Annotated[dict[str, ManifestPrompt], Field(description="Agent name (and 'training system prompt') -> its prompt.")]
    model: Annotated[ManifestModel, Field(description="The model that wrote the pairs.")]
    files: Annotated[dict[str, str], Field(description="File name -> SHA-256 of each JSONL file written.")]


class ModelUsage(BaseModel):
    """The gateway's counts for one purpose (one agent)."""

    model_config = ConfigDict(extra="forbid")

    calls: Annotated[int, Field(ge=0, description="Requests answered, from the model or the cache.")] = 0
    cache_hits: Annotated[int, Field(ge=0, description="Requests answered from the reply cache.")] = 0
    retries: Annotated[int, Field(ge=0, description="Repeated attempts after timeouts, 429s and 5xx errors.")] = 0
    failures: Annotated[int, Field(ge=0, description="Requests that failed after their last retry.")] = 0
    prompt_tokens: Annotated[int, Field(ge=0, description="Tokens sent.")] = 0
    completion_tokens: Annotated[int, Field(ge=0, description="Tokens received.")] = 0
    cost_usd: Annotated[float, Field(ge=0, description="Cost as the provider prices it; 0 for a local model.")] = 0.0


class GenerationInfo(BaseModel):
    """Who wrote the pairs and what asking cost (DatasetReport.llm)."""

    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, Field(description="The generating model, or 'none (extractive generator)'.")]
    agent: Annotated[
        dict[str, int | str],
        Field(
            description=(
                "The QA agent's counts: 'chunks by <tier>', 'model calls', 'failed replies'; after a trial, 'model trial acceptance %' "
                "and, when the model failed it, 'model dropped after trial'; 'model never answered usefully' holds the first error."
            )
        ),
    ] = {}
    trusted: Annotated[bool, Field(description="False when the model failed its trial: it then neither judged nor reworded.")] = True
    usage: Annotated[dict[str, ModelUsage], Field(description="The gateway's counts per purpose (agent name).")] = {}


class DatasetReport(BaseModel):
    """What `docpipe generate` made and lost, written to dataset/report.json and shown on the card."""

    model_config = ConfigDict(extra="forbid")

    documents: int = Field(description="Documents in documents.jsonl.")
    documents_with_text: int = Field(description="Documents that yielded at least one chunk with content.")
    documents_covered: int = Field(
        description="Documents with text that have accepted pairs, or whose pairs all repeat another document's."
    )
    uncovered: dict[str, str] = Field(description="path -> why a document with text has no accepted pair.")
    chunks: int = Field(description="Chunks cut from the documents.")
    chunks_with_content: int = Field(description="Chunks with at least one fact to ask about.")
    chunks_covered: int = Field(description="Chunks with at least one accepted pair.")
    funnel: dict[str, int] = Field(description="Candidates left after each check, in order.")
    rejections: dict[str, int] = Field(description="Rejected candidates per reason.")
    tiers: dict[str, dict[str, int]] = Field(description="Per agent tier: candidates and accepted pairs.")
    splits: dict[str, int] = Field(description="Records per output file.")
    holdout: str = Field(default="questions", description="What evaluation holds out: questions (every chunk trained on) or sections.")
    facts: int = Field(default=0, description="Distinct facts (chunk and quote) among the accepted pairs.")
    train_kinds: dict[str, int] = Field(default={}, description="Training records per kind: qa wordings, rehearsal, refusal.")
    leaks: dict[str, int] = Field(
        default={}, description="Held-out questions dropped as near-duplicates of training ones, per held-out set."
    )
    llm: GenerationInfo = Field(description="Generating model, the QA agent's counts and the gateway's usage per purpose.")
    seconds: float


class LossPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    epoch: float
    loss: float


class StageResult(BaseModel):
    """One training stage (SFT or DPO): where its adapter is and how it went."""

    model_config = ConfigDict(extra="forbid")

    stage: Annotated[str, Field(description="sft | dpo.")]
    backend: Annotated[str, Field(description="Backend and device that ran the stage, e.g. 'hf on cpu' (DPO after mlx runs on hf).")] = ""
    adapter: Annotated[str, Field(description="Folder of the stage's best adapter (peft format).")]
    steps: Annotated[int, Field(ge=0, description="Optimiser steps taken (including those before a resume).")]
    epochs: Annotated[float, Field(ge=0, description="Passes over the training data completed.")]
    train_loss: Annotated[list[LossPoint], Field(description="Training loss as logged.")] = []
    eval_loss: Annotated[list[LossPoint], Field(description="Held-out loss at each measurement.")] = []
    best_eval_loss: Annotated[float | None, Field(description="Lowest held-out loss; the adapter kept is the one that had it.")] = None
    best_step: Annotated[int | None, Field(description="Step of the kept adapter.")] = None
    stopped_early: Annotated[bool, Field(description="Stopped because the held-out loss stopped improving.")] = False
    resumed_from_step: Annotated[int | None, Field(description="Checkpoint step this run resumed from, if it was interrupted.")] = None
    tokens: Annotated[int, Field(ge=0, description="Real (non-padding) tokens trained on in this process.")] = 0
    tokens_per_s: Annotated[float, Field(ge=0, description="Real tokens per second of training time.")] = 0.0
    wall_s: Annotated[float, Field(ge=0, description="Wall time of the stage in this process.")] = 0.0
    peak_memory_mb: Annotated[float, Field(ge=0, description="Peak resident memory (CPU) or peak allocated GPU memory.")] = 0.0


class TrainSettings(BaseModel):
    """The effective training settings of a run (runs/<id>/train_config.json and TrainResult.config): the
    TrainConfig fields with epochs and threads resolved, the backend and device that trained, and the base
    weights by path and hash. Its own record, not TrainConfig: the contracts stand below the configs."""

    model_config = ConfigDict(extra="forbid")

    base_model: Annotated[str, Field(description="The base model as asked for.")]
    backend: Annotated[str, Field(description="hf | unsloth | mlx: the backend that trained (not 'auto').")]
    device: Annotated[str, Field(description="cpu | cuda | mps | metal: where it trained (not 'auto').")]
    epochs: Annotated[float, Field(gt=0, description="Passes over the training pairs (chosen from the dataset size when none was given).")]
    target_exposures: Annotated[int, Field(ge=1, description="Times each fact was to be seen, when the epochs were chosen.")] = 12
    time_budget_minutes: Annotated[float | None, Field(gt=0, description="Training time the epochs were chosen for; null = none.")] = None
    max_steps: Annotated[int | None, Field(ge=1, description="Most optimiser steps (overriding epochs); null = none set.")] = None
    batch_size: Annotated[int, Field(ge=1, description="Pairs per optimiser step.")]
    learning_rate: Annotated[float, Field(gt=0, description="Peak learning rate of the LoRA weights.")]
    lora_rank: Annotated[int, Field(ge=1, description="LoRA rank r.")]
    lora_alpha: Annotated[float, Field(gt=0, description="LoRA alpha; the update is scaled by alpha / r.")]
    lora_dropout: Annotated[float, Field(ge=0, lt=1, description="Dropout on the LoRA input.")]
    qlora: Annotated[bool, Field(description="The base was loaded in 4 bits (QLoRA).")]
    max_seq_tokens: Annotated[
        int, Field(ge=1, description="Longest training sequence in tokens: the trained context, and the export's default num_ctx.")
    ]
    evals_per_epoch: Annotated[int, Field(ge=1, description="Held-out loss measurements per epoch.")]
    eval_max_pairs: Annotated[int, Field(ge=1, description="Held-out pairs scored at each measurement.")]
    early_stopping_patience: Annotated[int, Field(ge=1, description="Measurements without improvement before stopping.")]
    checkpoint_minutes: Annotated[float, Field(ge=0, description="Checkpoint interval (0 = every step).")]
    threads: Annotated[int, Field(ge=1, description="CPU threads used.")]
    seed: Annotated[int, Field(description="Seed for LoRA initialisation, shuffling and dropout.")]
    dpo: Annotated[bool, Field(description="DPO ran after SFT.")]
    dpo_beta: Annotated[float, Field(gt=0, description="DPO beta.")]
    dpo_learning_rate: Annotated[float, Field(gt=0, description="Peak learning rate during DPO.")]
    dpo_epochs: Annotated[float, Field(gt=0, description="Passes over the preference pairs.")]
    dpo_max_pairs: Annotated[int | None, Field(ge=1, description="Most preference pairs used; null = all.")] = None
    base_path: Annotated[str, Field(description="Folder the base weights were loaded from.")]
    base_sha256: Annotated[str | None, Field(description="Hash of the file the base came from, when it came from one.")] = None
    dequantised_from: Annotated[str | None, Field(description="Quantisation of the GGUF the base was dequantised from, if it was.")] = None


class Exposures(BaseModel):
    """How often the run showed the model each fact (runs/<id>/exposures.json holds the count per fact)."""

    model_config = ConfigDict(extra="forbid")

    epochs: Annotated[float, Field(ge=0, description="Passes over the training examples completed (the kept adapter's).")]
    epochs_reason: Annotated[str, Field(description="Why this many epochs: given, the exposure target, or the time budget.")]
    facts: Annotated[int, Field(ge=0, description="Facts with Q&A examples in training.")]
    wordings_per_fact: Annotated[float, Field(ge=0, description="Mean question wordings per fact in train.jsonl.")]
    min: Annotated[float, Field(ge=0, description="Fewest times a fact was seen (wordings x epochs).")]
    median: Annotated[float, Field(ge=0)]
    max: Annotated[float, Field(ge=0)]
    rehearsals: Annotated[int, Field(ge=0, description="Chunk texts trained on (each seen once per epoch).")] = 0
    refusals: Annotated[int, Field(ge=0, description="Out-of-corpus questions trained to be declined.")] = 0
    estimated_tokens_per_epoch: Annotated[int, Field(ge=0, description="What the epochs were planned with (characters / 4).")] = 0


class TrainResult(BaseModel):
    """What `docpipe train` made: written to runs/<id>/train_result.json."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    backend: Annotated[str, Field(description="hf | unsloth | mlx: the backend that produced the adapter.")]
    device: Annotated[str, Field(description="cpu | cuda | mps | metal, with the GPU name when there is one.")]
    dispatch: Annotated[str, Field(description="Why this backend and device were chosen.")]
    fallbacks: Annotated[list[str], Field(description="Backends tried before this one, each with why it failed.")] = []
    base_model: Annotated[str, Field(description="The base model as asked for.")]
    base_path: Annotated[str, Field(description="Folder the base weights were loaded from.")]
    base_source: Annotated[str, Field(description="local folder | hugging face cache | packaged gguf.")]
    base_sha256: Annotated[str | None, Field(description="Hash of the file the base came from, when it came from one.")] = None
    dequantised_from: Annotated[
        str | None, Field(description="Quantisation of the GGUF the base was dequantised from (not the original 16-bit weights).")
    ] = None
    base_license: Annotated[str | None, Field(description="The base model's licence, when known.")] = None
    chat_template: Annotated[str, Field(description="The base's chat template: training, evaluation, chat and export all use it.")]
    adapter: Annotated[str, Field(description="The final adapter (after DPO when it ran); loads with peft's PeftModel.from_pretrained.")]
    dataset_sha256: Annotated[str, Field(description="Hash of the training and held-out files trained on.")]
    sft: StageResult
    dpo: StageResult | None = None
    threads: Annotated[int, Field(ge=1, description="CPU threads used.")]
    wall_s: Annotated[float, Field(ge=0, description="Wall time of this process's training.")]
    peak_memory_mb: Annotated[float, Field(ge=0)]
    config: Annotated[TrainSettings, Field(description="The effective training settings, epochs and threads resolved.")]
    exposures: Annotated[Exposures | None, Field(description="How often each fact was seen (datasets with fact ids).")] = None
    docpipe_version: str


class QuantParity(BaseModel):
    """One exported GGUF against the trained model (export.parity)."""

    model_config = ConfigDict(extra="forbid")

    quantization: Annotated[str, Field(description="f16 | bf16 | f32 | q8_0 | q4_k_m | ...")]
    file: Annotated[str, Field(description="The GGUF's file name, in the export folder.")]
    size_mb: Annotated[float, Field(ge=0)]
    write_s: Annotated[float, Field(ge=0, description="Seconds to write (gguf-py) or quantise (llama.cpp) this file.")]
    check_s: Annotated[float, Field(ge=0, description="Seconds the parity check of this file took.")] = 0.0
    token_mismatches: Annotated[
        list[str], Field(description="Probes whose llama.cpp token ids differ from the trained tokenizer's; one line each.")
    ] = []
    positions: Annotated[int, Field(ge=0, description="Next-token distributions compared.")]
    top1_agreement: Annotated[float | None, Field(description="Share of positions where both pick the same most likely token.")] = None
    mean_kl: Annotated[float | None, Field(description="Mean KL(trained || GGUF) in nats.")] = None
    max_kl: Annotated[float | None, Field(description="Largest KL at one position.")] = None
    gate: Annotated[
        Literal["pass", "fail", "report"],
        Field(description="pass/fail against export.gate's thresholds; report: figures only (tokens must still match)."),
    ]
    reason: Annotated[str | None, Field(description="Why it failed.")] = None


class ExportResult(BaseModel):
    """What `docpipe export` made: export/export_result.json; parity.json holds `parity`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    run_id: str
    base_model: str
    merge_base: Annotated[str, Field(description="What the adapter was merged into, e.g. 'float32 dequantised from Q4_1'.")]
    warnings: Annotated[list[str], Field(description="Things a user should know, e.g. a quantisation of an already quantised base.")] = []
    parity: list[QuantParity]
    passed: Annotated[bool, Field(description="Every gated file passed and every file's tokens matched.")]
    modelfile: Annotated[
        str | None, Field(description="The Modelfile's path; None when the gate failed (no Modelfile for a broken model).")
    ] = None
    modelfile_quantization: str
    chat_template_family: Annotated[str, Field(description="chatml | gemma: the Ollama template written.")]
    load_s: Annotated[float, Field(ge=0, description="Seconds to load the base and adapter.")] = 0.0
    reference_s: Annotated[float, Field(ge=0, description="Seconds to compute the trained model's reference logits.")] = 0.0
    wall_s: Annotated[float, Field(ge=0)]
    docpipe_version: str


# --- evaluation (`docpipe eval`) -------------------------------------------------------------------------------------

QuestionSet = Literal["seen", "rephrased", "unseen", "out_of_corpus", "user"]


class EvalQuestion(BaseModel):
    """One question the model is asked, with what a good answer is and where it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(description="Stable id: the set and the question, hashed.")]
    set: Annotated[
        QuestionSet,
        Field(
            description="seen (trained on) | rephrased (a trained fact in new words) | unseen (never trained) | "
            "out_of_corpus (the documents do not answer it) | user (--questions)."
        ),
    ]
    question: Annotated[str, Field(description="What the model is asked.")]
    reference: Annotated[str, Field(description="The reference answer (for out_of_corpus: the abstention).")]
    path: Annotated[str | None, Field(description="The document that answers it (relative path), when known.")] = None
    page: Annotated[int | None, Field(description="The page of the answer, when known.")] = None
    quote: Annotated[str | None, Field(description="The source passage that supports the reference, when known.")] = None
    source_id: Annotated[str | None, Field(description="The training pair it was made from (seen, rephrased).")] = None


class AnswerScore(BaseModel):
    """One model's answer to one question, and its scores."""

    model_config = ConfigDict(extra="forbid")

    answer: Annotated[str, Field(description="The model's whole reply, greedy, with the training chat template and system prompt.")]
    f1: Annotated[float, Field(ge=0, le=1, description="Token F1 of the answer (without its source line) against the reference.")]
    key_facts: Annotated[float, Field(ge=0, le=1, description="Share of the reference's content words and numbers found in the answer.")]
    abstained: Annotated[bool, Field(description="The answer says the documents do not say.")]
    cited: Annotated[bool, Field(description="The answer ends with a 'Source: <file>, p. <page>' line.")]
    cited_path: Annotated[str | None, Field(description="The file it cites.")] = None
    cited_page: Annotated[int | None, Field(description="The page it cites.")] = None
    citation_exists: Annotated[
        bool | None, Field(description="The cited file is in the corpus and the page in its range (None when uncited).")
    ] = None
    citation_right_document: Annotated[
        bool | None, Field(description="The cited file is the reference's (None when uncited or unknown).")
    ] = None
    citation_supports: Annotated[
        bool | None, Field(description="The cited document's text holds the answer's content words (None when uncited).")
    ] = None
    regurgitated: Annotated[
        str | None, Field(description="Id of a training pair of another question whose answer this copies (8-gram overlap).")
    ] = None
    judge: Annotated[int | None, Field(ge=1, le=5, description="The optional LLM judge's 1-5 rubric score.")] = None
    correct: Annotated[
        bool,
        Field(
            description="The headline pass/fail: key facts >= eval.correct_key_facts for answerable questions; "
            "an abstention for out-of-corpus ones."
        ),
    ]


class EvalRecord(BaseModel):
    """A line of eval_questions.jsonl: a question and every model's answer to it (the loop's paired tests read these)."""

    model_config = ConfigDict(extra="forbid")

    question: EvalQuestion
    answers: Annotated[dict[str, AnswerScore], Field(description="model label (base, tuned, tuned-q8_0, ...) -> its answer and scores.")]


class Estimate(BaseModel):
    """A measured share or mean with its 95% interval and the number of questions behind it."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    low: float | None
    high: float | None
    n: int
    too_small: Annotated[bool, Field(description="n is below eval.min_questions: the interval is too wide to say anything.")] = False


class PairedComparison(BaseModel):
    """Model B against model A on the same questions: the mean difference, its paired-bootstrap interval, Wilcoxon's p."""

    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    measure: str
    set: Annotated[str | None, Field(description="The question set(s) compared, e.g. 'rephrased' or 'rephrased+unseen'.")] = None
    difference: Estimate
    p_value: Annotated[float | None, Field(description="Wilcoxon signed-rank test (two-sided); None when every difference is zero.")]
    improvements: Annotated[list[str], Field(description="Question ids B answers correctly and A does not.")] = []
    regressions: Annotated[list[str], Field(description="Question ids A answers correctly and B does not.")] = []


class SetScores(BaseModel):
    """One model on one question set."""

    model_config = ConfigDict(extra="forbid")

    correct: Estimate
    f1: Estimate
    key_facts: Estimate
    cited: Estimate
    citation_exists: Estimate
    citation_right_document: Estimate
    citation_supports: Estimate
    abstained: Estimate
    regurgitated: Estimate


Verdict = Literal["ok", "overfit", "undertrained", "ungrounded", "over-refusing", "insufficient-data"]


class EvalReport(BaseModel):
    """What `docpipe eval` found: runs/<id>/eval.json; the first screen of report.md says it in words."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    verdict: Verdict
    reasons: Annotated[list[str], Field(description="Why, in plain words, one line each.")]
    trust: Annotated[list[str], Field(description="What the model can and cannot be trusted for, in plain words.")]
    engine: Annotated[str, Field(description="How answers were generated, e.g. 'llama.cpp on F16 GGUFs' or 'transformers'.")]
    models: Annotated[dict[str, str], Field(description="label -> what it is (base model, tuned run, a GGUF file).")]
    sets: Annotated[dict[str, dict[str, SetScores]], Field(description="model label -> question set -> scores.")]
    comparisons: Annotated[
        list[PairedComparison], Field(description="Tuned vs base (and vs the previous best, each GGUF vs tuned) per set.")
    ]
    loss_gap: Annotated[float | None, Field(description="Best held-out loss minus the final training loss of the run.")] = None
    questions: Annotated[dict[str, int], Field(description="Questions per set.")]
    confidence: Annotated[float, Field(description="Confidence level of every interval.")] = 0.95
    seconds: float
    docpipe_version: str
