"""The `docpipe` command. Commands parse options, build a config and call a stage's `run`;
heavy modules are imported inside the commands so that `docpipe --help` stays instant."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Optional, TypeVar

import typer

from docpipe import __version__

if TYPE_CHECKING:
    from docpipe.events import EventSink

T = TypeVar("T")

app = typer.Typer(
    help="Turn a folder of documents into a small fine-tuned model that cites its sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Output folder: everything a run makes, and its cache.")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (default: configs/default.yaml).")]


def _fail(message: str, code: int = 2) -> NoReturn:
    from rich.markup import escape

    from docpipe.ui import console

    # escaped: hints such as pip install 'docpipe[local]' are not rich markup
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # one line, never wrapped
    raise typer.Exit(code)


def _config(path: Optional[Path], overrides: dict):
    from docpipe.config import load_config
    from docpipe.errors import DocpipeError

    try:
        return load_config(path, overrides)
    except DocpipeError as exc:
        _fail(exc.one_line())


def _run_stage(stage: str, call: Callable[[EventSink], T], *, resume: str) -> T:
    """Every command's wrapper: the stage's progress on screen, its errors as one line (exit 2), Ctrl-C as a
    resume hint (exit 130). What the stage finished before an error or Ctrl-C is kept, so the same command resumes."""
    from docpipe.errors import classify
    from docpipe.ui import console, progress

    try:
        with progress(stage) as events:
            return call(events)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/yellow]: {resume}; run the same command to resume")
        raise typer.Exit(130) from None
    except Exception as exc:
        error = classify(exc, stage)
        if error is None:
            raise
        _fail(error.one_line())


@app.command()
def ingest(
    input_dir: Annotated[Path, typer.Argument(help="Folder of documents to read (searched recursively).")],
    out: OutOption = Path("docpipe-out"),
    config: ConfigOption = None,
    workers: Annotated[Optional[int], typer.Option(help="Parser processes (default: one per core).")] = None,
    timeout: Annotated[Optional[float], typer.Option(help="Seconds one file may take before it is reported as failed.")] = None,
    ocr: Annotated[Optional[bool], typer.Option("--ocr/--no-ocr", help="OCR images and scanned PDFs.")] = None,
) -> None:
    """Read every document under INPUT_DIR into OUT/documents.jsonl, with a report of what could not be read."""
    from docpipe.ingest import pipeline
    from docpipe.layout import Layout
    from docpipe.stage import IngestInputs
    from docpipe.ui import console, ingest_table

    cfg = _config(config, {"ingest.workers": workers, "ingest.timeout_s": timeout, "ingest.ocr": ocr})
    layout = Layout(out)
    report = _run_stage(
        "ingest",
        lambda events: pipeline.run(IngestInputs(input_dir, layout), cfg.ingest, events=events),
        resume="files already read are saved",
    )
    if report.files == 0:
        console.print(f"[yellow]no files found under {input_dir}[/yellow] (hidden files are skipped unless ingest.include_hidden)")
    else:
        console.print(ingest_table(report))
    console.print(f"wrote {layout.documents} and {layout.ingest_report}")


@app.command()
def generate(
    out: OutOption = Path("docpipe-out"),
    config: ConfigOption = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model", "-m", help="'auto', 'none' (extractive only), a .gguf path, or a litellm model string such as openai/gpt-4o-mini."
        ),
    ] = None,
    api_base: Annotated[Optional[str], typer.Option(help="Base URL of an OpenAI-compatible server (vLLM, llama.cpp, Ollama).")] = None,
    judge: Annotated[
        Optional[bool], typer.Option("--judge/--no-judge", help="Also have the model check each answer against its quote.")
    ] = None,
) -> None:
    """Write a curated Q&A dataset with verified citations to OUT/dataset/ (after `docpipe ingest`)."""
    from docpipe.layout import Layout
    from docpipe.qa import generate as stage
    from docpipe.stage import GenerateInputs
    from docpipe.ui import console, dataset_table

    cfg = _config(config, {"llm.model": model, "llm.api_base": api_base, "generate.judge": judge})
    layout = Layout(out)
    report = _run_stage(
        "generate",
        lambda events: stage.run(GenerateInputs(layout, cfg.llm), cfg.generate, events=events),
        resume="finished chunks and model replies are saved",
    )
    console.print(dataset_table(report))
    console.print(f"wrote {layout.dataset.root} (card: {layout.dataset.card})")


@app.command()
def train(
    out: OutOption = Path("docpipe-out"),
    config: ConfigOption = None,
    base_model: Annotated[
        Optional[str],
        typer.Option(
            "--base-model",
            "-b",
            help="Packaged base (smollm2-135m-instruct, gemma-3-270m), a local HF model folder, or an id in the local HF cache.",
        ),
    ] = None,
    backend: Annotated[Optional[str], typer.Option(help="auto, hf, unsloth or mlx.")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or mps (hf backend).")] = None,
    epochs: Annotated[
        Optional[float],
        typer.Option(help="Passes over the training examples (default: train.target_exposures per fact, in the time budget)."),
    ] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps (smoke runs).")] = None,
    dpo: Annotated[Optional[bool], typer.Option("--dpo/--no-dpo", help="Also run DPO on dataset/dpo.jsonl after SFT.")] = None,
    qlora: Annotated[Optional[bool], typer.Option("--qlora/--no-qlora", help="4-bit base (unsloth on CUDA).")] = None,
) -> None:
    """Fine-tune a LoRA adapter on OUT/dataset/ (after `docpipe generate`) into OUT/runs/<id>/."""
    from docpipe.layout import Layout
    from docpipe.stage import TrainInputs
    from docpipe.ui import console, train_table
    from trainers import train as stage

    cfg = _config(
        config,
        {
            "train.base_model": base_model,
            "train.backend": backend,
            "train.device": device,
            "train.epochs": epochs,
            "train.max_steps": max_steps,
            "train.dpo": dpo,
            "train.qlora": qlora,
        },
    )
    layout = Layout(out)
    result = _run_stage(
        "train", lambda events: stage.run(TrainInputs(layout), cfg.train, events=events), resume="the last checkpoint is saved"
    )
    console.print(train_table(result))
    console.print(f"wrote {layout.run(result.run_id).root} (result: {layout.run(result.run_id).result.name})")


@app.command(name="eval")
def evaluate(
    out: OutOption = Path("docpipe-out"),
    config: ConfigOption = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Run id under OUT/runs/ (default: the latest finished run).")] = None,
    questions: Annotated[
        Optional[Path], typer.Option("--questions", help="Your own questions: JSONL or CSV with question, answer and optionally document.")
    ] = None,
    judge: Annotated[
        Optional[str], typer.Option("--judge", help="Also score answers 1-5 with this LLM (a litellm model string or a .gguf path).")
    ] = None,
    gguf: Annotated[Optional[Path], typer.Option("--gguf", help="Also evaluate this GGUF file against the trained model.")] = None,
    engine: Annotated[Optional[str], typer.Option(help="auto, llama.cpp or transformers.")] = None,
) -> None:
    """Ask the trained model (and its base) the dataset's questions and yours; write eval.json and a report (after `docpipe train`)."""
    from docpipe.config import updated
    from docpipe.layout import Layout
    from docpipe.stage import EvalInputs
    from docpipe.ui import console, eval_table
    from evals import pipeline

    cfg = _config(config, {"eval.run": run, "eval.engine": engine})
    judge_llm = updated(cfg.llm, model=judge, temperature=0) if judge else None  # the rubric at temperature 0
    layout = Layout(out)
    report = _run_stage(
        "evaluate",
        lambda events: pipeline.run(EvalInputs(layout, questions, gguf, judge_llm), cfg.eval, events=events),
        resume="finished answers are saved",
    )
    console.print(eval_table(report))
    folder = layout.run(report.run_id)
    console.print(f"wrote {folder.eval_report}, {folder.eval_questions.name}, {folder.eval_markdown.name} and {folder.eval_html.name}")


@app.command()
def export(
    out: OutOption = Path("docpipe-out"),
    config: ConfigOption = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Run id under OUT/runs/ (default: the latest finished run).")] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", "-n", help="Model name for the files and `ollama create` (default: the output folder's name)."),
    ] = None,
    quant: Annotated[
        Optional[list[str]],
        typer.Option(
            "--quant",
            "-q",
            help="GGUF type to write, repeatable: f16, bf16, f32, q8_0, q6_k, q5_k_m, q4_k_m, q4_0 (default: f16, q8_0, q4_k_m).",
        ),
    ] = None,
    modelfile_quant: Annotated[
        Optional[str], typer.Option("--modelfile-quant", help="The GGUF the Modelfile uses (default: q8_0).")
    ] = None,
) -> None:
    """Write GGUF files, a parity report, an Ollama Modelfile and a model card to OUT/export/ (after `docpipe train`)."""
    from docpipe.layout import Layout
    from docpipe.stage import ExportInputs
    from docpipe.ui import console, export_table
    from export import pipeline
    from export.card import ollama_commands

    cfg = _config(
        config,
        {"export.run": run, "export.name": name, "export.quantizations": quant or None, "export.modelfile_quantization": modelfile_quant},
    )
    layout = Layout(out)
    result = _run_stage(
        "export", lambda events: pipeline.run(ExportInputs(layout), cfg.export, events=events), resume="finished GGUF files are kept"
    )
    console.print(export_table(result))
    folder = layout.export
    if not result.passed:
        failed = "; ".join(f"{p.file}: {p.reason}" for p in result.parity if p.gate == "fail")
        _fail(f"the parity gate failed ({failed}): no Modelfile written; details in {folder.parity}", code=1)
    console.print(f"wrote {folder.root} (Modelfile, parity.json, README.md). To run it in Ollama:")
    for line in ollama_commands(result, str(folder.modelfile)):
        console.print(f"  {line}", soft_wrap=True, markup=False)


@app.command()
def build(
    input_dir: Annotated[Path, typer.Argument(help="Folder of documents to learn (searched recursively).")],
    out: OutOption = Path("docpipe-out"),
    config: ConfigOption = None,
    budget_minutes: Annotated[float, typer.Option(min=1, help="Wall time for the whole build, export included.")] = 30.0,
    max_steps: Annotated[int, typer.Option(min=1, help="Most training runs, the baseline included.")] = 6,
    target: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Stop when all are met: verdict=ok, f1=0.4 (questions in new words), citation=0.9 (right document), abstention=0.8; "
            "repeatable; the ones given replace the default (verdict=ok citation=0.9 abstention=0.8)."
        ),
    ] = None,
    model: Annotated[
        Optional[str], typer.Option("--model", "-m", help="Who writes the Q&A pairs and, when it is an API model, proposes the moves.")
    ] = None,
    base_model: Annotated[
        Optional[str], typer.Option("--base-model", "-b", help="The model to fine-tune (default: the packaged one).")
    ] = None,
    track: Annotated[
        Optional[str], typer.Option(help="mlflow: log each step as an MLflow run, the best as `champion` (extra `track`).")
    ] = None,
    track_uri: Annotated[Optional[str], typer.Option(help="MLflow tracking URI (default: a file store in OUT/mlruns).")] = None,
) -> None:
    """The main job: documents in DIR -> a fine-tuned, evaluated model exported for Ollama, with a journal of every decision."""
    from docpipe.build import BuildSettings, run_build
    from docpipe.errors import DocpipeError
    from docpipe.layout import Layout
    from docpipe.ui import build_summary, console, progress

    cfg = _config(config, {"llm.model": model, "train.base_model": base_model})
    try:
        if track not in (None, "mlflow"):
            raise ValueError(f"--track {track}: the one tracker is mlflow")
        settings = BuildSettings(
            budget_minutes=budget_minutes, max_steps=max_steps, target=_target(target or []), track=track, track_uri=track_uri
        )
    except ValueError as exc:
        _fail(str(exc))
    layout = Layout(out)
    try:
        result = run_build(input_dir, layout, cfg, settings, progress)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished steps are in the journal; run the same command to continue")
        raise typer.Exit(130) from None
    except DocpipeError as exc:
        _fail(exc.one_line())
    console.print(build_summary(result, layout))
    if result.export is None or not result.export.passed:
        _fail(f"no model was exported: {result.loop.stop_reason}" if result.export is None else "the export failed its parity gate", 1)


def _target(items: list[str]):
    from docpipe.build.task import Target

    names = {"verdict": "verdict_ok", "f1": "new_words_f1", "citation": "right_document", "abstention": "abstention"}
    values: dict = {}
    for item in items:
        key, _, value = (part.strip() for part in item.partition("="))
        try:
            values[names[key]] = value == "ok" if key == "verdict" else float(value)
        except (KeyError, ValueError):
            raise ValueError(f"--target {item!r}: use verdict=ok, f1=0.4, citation=0.9 or abstention=0.8") from None
    if not values:
        return Target()
    return Target(**{"verdict_ok": False, "right_document": None, "abstention": None, **values})


@app.command()
def runs(out: OutOption = Path("docpipe-out")) -> None:
    """List the training runs of an output folder with their headline measures and what the build loop decided."""
    from docpipe.layout import Layout
    from docpipe.ui import console, runs_table

    if not out.is_dir():
        _fail(f"no output folder at {out}: run `docpipe build DIR --out {out}` first")
    console.print(runs_table(Layout(out)))


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Show what this machine has: Python, torch device, optional backends, system parsers, readable formats."""
    from docpipe.doctor import collect
    from docpipe.ui import doctor_table

    info = collect()
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        from rich.console import Console

        Console().print(doctor_table(info))


@app.command()
def status(out: OutOption = Path("docpipe-out")) -> None:
    """Summarise what an output folder holds so far."""
    from docpipe.layout import Layout
    from docpipe.status import summarize

    if not out.is_dir():
        _fail(f"no output folder at {out}: run `docpipe ingest DIR --out {out}` first")
    typer.echo(summarize(Layout(out)))


@app.command()
def chat(
    gguf: Annotated[Path, typer.Argument(help="The exported .gguf model.")],
    system: Annotated[
        Optional[str], typer.Option(help="System prompt (default: the one docpipe export wrote into the GGUF; '' for none).")
    ] = None,
    prompt: Annotated[
        Optional[str], typer.Option("--prompt", "-p", help="Answer this one question and exit, instead of a conversation.")
    ] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest reply, in tokens.")] = 512,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature; 0 always takes the likeliest token.")] = 0.2,
    threads: Annotated[Optional[int], typer.Option(min=1, help="CPU threads (default: all cores but one, at most 4).")] = None,
) -> None:
    """Ask questions of an exported GGUF with the chat template it was trained with; replies stream as they come."""
    import sys

    if not gguf.is_file():
        _fail(f"no GGUF file at {gguf}")
    with gguf.open("rb") as file:
        if file.read(4) != b"GGUF":
            _fail(f"{gguf} is not a GGUF file (it does not start with the GGUF magic)")
    try:
        from export.chat import ChatError
        from export.chat import chat as run_chat
    except ImportError as exc:
        _fail(str(exc))
    try:
        run_chat(gguf, system=system, prompt=prompt, max_tokens=max_tokens, temperature=temperature, threads=threads, out=sys.stdout)
    except ChatError as exc:
        _fail(exc.one_line())
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"docpipe {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = None,
) -> None:
    """docpipe: documents in, a model that cites them out."""
