"""Every path under `--out`, in one place: stages, the CLI and `status` ask the layout, never spell a path.

OUT/
  documents.jsonl  ingest_report.json  ingest_config.json  logs/parsers.log      ingest
  chunks.jsonl  dataset/{train,eval,rejected,dpo,...}.jsonl  dataset/README.md   generate
  runs/<id>/{train_config.json, train_result.json, adapter/, sft/, dpo/}         train
  export/{NAME-<quant>.gguf, parity.json, Modelfile, README.md, ...}             export
  journal.md  journal.jsonl  best                                               the loop
  cache/{ingest,qa,llm,base_models,export}/                                     caches
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetLayout:
    """OUT/dataset/: what `docpipe generate` writes and training, evaluation and export read."""

    root: Path

    @property
    def train(self) -> Path:
        return self.root / "train.jsonl"

    @property
    def eval(self) -> Path:
        return self.root / "eval.jsonl"

    @property
    def rejected(self) -> Path:
        return self.root / "rejected.jsonl"

    @property
    def probes_paraphrase(self) -> Path:
        return self.root / "probes_paraphrase.jsonl"

    @property
    def probes_abstain(self) -> Path:
        return self.root / "probes_abstain.jsonl"

    @property
    def dpo(self) -> Path:
        return self.root / "dpo.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    def in_format(self, style: str, split: str) -> Path:
        """The dataset in another tool's format: alpaca/train.json, sharegpt/eval.json, ..."""
        return self.root / style / f"{split}.json"


@dataclass(frozen=True)
class StageWorkLayout:
    """One training stage on one backend: runs/<id>/<stage>/<backend>-<device>/."""

    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def best_state(self) -> Path:
        """The keep-best/early-stopping state, so a resumed run remembers the best so far."""
        return self.root / "best.json"

    @property
    def result(self) -> Path:
        return self.root / "stage_result.json"


@dataclass(frozen=True)
class RunLayout:
    """runs/<id>/: one training run and, later, its evaluation."""

    root: Path

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "train_config.json"

    @property
    def result(self) -> Path:
        return self.root / "train_result.json"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def exposures(self) -> Path:
        """Fact id -> times the run showed it to the model (wordings x epochs)."""
        return self.root / "exposures.json"

    @property
    def eval_report(self) -> Path:
        return self.root / "eval.json"

    @property
    def eval_questions(self) -> Path:
        """Every question with every model's answer and scores: the loop's paired tests read it."""
        return self.root / "eval_questions.jsonl"

    @property
    def eval_markdown(self) -> Path:
        return self.root / "report.md"

    @property
    def eval_html(self) -> Path:
        return self.root / "report.html"

    def stage(self, stage: str, backend: str, device: str) -> StageWorkLayout:
        return StageWorkLayout(self.root / stage / f"{backend}-{device}")


@dataclass(frozen=True)
class ExportLayout:
    """OUT/export/: the GGUF files, the parity report, the Modelfile and the model card."""

    root: Path

    def gguf(self, name: str, quantization: str) -> Path:
        return self.root / f"{name}-{quantization}.gguf"

    @property
    def parity(self) -> Path:
        return self.root / "parity.json"

    @property
    def modelfile(self) -> Path:
        return self.root / "Modelfile"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def result(self) -> Path:
        return self.root / "export_result.json"

    @property
    def manifest(self) -> Path:
        return self.root / "export_manifest.json"


@dataclass(frozen=True)
class Layout:
    """The output folder of one project (`--out`)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # ingest
    @property
    def documents(self) -> Path:
        return self.root / "documents.jsonl"

    @property
    def ingest_report(self) -> Path:
        return self.root / "ingest_report.json"

    @property
    def ingest_config(self) -> Path:
        return self.root / "ingest_config.json"

    @property
    def parser_log(self) -> Path:
        return self.root / "logs" / "parsers.log"

    # generate
    @property
    def chunks(self) -> Path:
        return self.root / "chunks.jsonl"

    @property
    def dataset(self) -> DatasetLayout:
        return DatasetLayout(self.root / "dataset")

    # train
    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run(self, run_id: str) -> RunLayout:
        return RunLayout(self.runs / run_id)

    def finished_runs(self) -> list[RunLayout]:
        """Runs with a result, oldest first (by when they finished)."""
        results = sorted(self.runs.glob("*/train_result.json"), key=lambda p: p.stat().st_mtime) if self.runs.is_dir() else []
        return [RunLayout(p.parent) for p in results]

    def started_runs(self) -> list[RunLayout]:
        """Runs whose settings were written (finished or not), newest first."""
        configs = sorted(self.runs.glob("*/train_config.json"), key=lambda p: p.stat().st_mtime, reverse=True) if self.runs.is_dir() else []
        return [RunLayout(p.parent) for p in configs]

    # export
    @property
    def export(self) -> ExportLayout:
        return ExportLayout(self.root / "export")

    # the loop
    @property
    def journal_md(self) -> Path:
        return self.root / "journal.md"

    @property
    def journal_jsonl(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def best(self) -> Path:
        return self.root / "best"

    def stage_stamp(self, stage: str) -> Path:
        """The fingerprint a stage last finished with (docpipe.stage)."""
        return self.cache / "stages" / f"{stage}.json"

    # caches
    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def ingest_cache(self) -> Path:
        """Parsed files by content and settings: a re-run parses only what changed."""
        return self.cache / "ingest"

    @property
    def qa_cache(self) -> Path:
        """Each chunk's candidate pairs: an interrupted `generate` resumes after the last finished chunk."""
        return self.cache / "qa"

    @property
    def llm_cache(self) -> Path:
        """Model replies by prompt, model and settings: no successful call is made twice."""
        return self.cache / "llm"

    @property
    def base_models_cache(self) -> Path:
        """Packaged bases, assembled and converted once into Hugging Face folders."""
        return self.cache / "base_models"

    @property
    def answers_cache(self) -> Path:
        """Evaluation answers by model hash, prompt and settings: an interrupted `eval` repeats no answer."""
        return self.cache / "answers"

    def eval_gguf(self, run_id: str, label: str, quantization: str = "f16") -> Path:
        """A GGUF `docpipe eval` writes to answer with llama.cpp (base or tuned; F16, and Q8_0 quantised from it)."""
        return self.cache / "eval_gguf" / f"{run_id}-{label}-{quantization}.gguf"

    @property
    def export_cache(self) -> Path:
        """The float GGUF an export quantises from, when it is not one of the files asked for."""
        return self.cache / "export"
