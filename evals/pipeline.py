"""The evaluate stage: a trained run and its dataset in, runs/<id>/eval.json, eval_questions.jsonl, report.md and
report.html out.

The base model and the tuned run answer the same questions (seen, rephrased, unseen, out-of-corpus, the
user's), greedily, with the training chat template and system prompt: through llama.cpp on GGUFs written on
the fly (F16 by default: the trained model's answers, fast on CPU), or transformers (base + adapter). Exported GGUFs of the run are asked too. Every answer is
scored, every set summarised with intervals, tuned compared with base per question (paired), and a verdict given
from documented thresholds. Answers are cached by model, prompt and settings: an interrupted eval repeats none.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from docpipe import __version__, runs
from docpipe.config import EvalConfig
from docpipe.contracts import Document, EvalQuestion, EvalRecord, EvalReport, ExportResult, PairedComparison, TrainingRecord, TrainResult
from docpipe.errors import ErrorKind
from docpipe.events import EventSink, StageEvent, ignore
from docpipe.layout import Layout
from docpipe.runtime.chat_format import trained_system_prompt
from docpipe.runtime.hardware import installed, probe
from docpipe.stage import EvalInputs, matches_fingerprint, record_fingerprint
from docpipe.store import (
    JsonCache,
    RecordError,
    atomic_write_text,
    read_records,
    remove_partials,
    sha256_file,
    stable_hash,
    write_json,
    write_jsonl,
)
from evals import EvalError
from evals.questions import SETS, question_sets

STAGE = "evaluate"
EVAL_VERSION = 1  # bump when scoring changes, so a finished evaluation is not taken as current
ANSWERABLE = ("seen", "rephrased", "unseen", "user")

Answerers = dict[str, Callable[[], object]]  # label -> a function that loads the model (one at a time: memory)


def fingerprint(inputs: EvalInputs, cfg: EvalConfig) -> str:
    """The run (adapter by hash), the dataset files, the user's questions, the extra GGUF, the judge and the settings."""
    layout = inputs.layout
    trained = _finished_run(layout, cfg)
    dataset = [layout.dataset.train, layout.dataset.eval, layout.dataset.probes_paraphrase, layout.dataset.probes_abstain]
    files = [Path(trained.adapter) / "adapter_model.safetensors", *dataset, inputs.questions, inputs.gguf, layout.export.result]
    hashes = [sha256_file(Path(f)) if f and Path(f).is_file() else None for f in files]
    judge = inputs.judge.model if inputs.judge else None
    return stable_hash(STAGE, EVAL_VERSION, trained.run_id, hashes, judge, cfg, __version__)


def is_current(inputs: EvalInputs, cfg: EvalConfig) -> bool:
    trained = _finished_run(inputs.layout, cfg)
    folder = inputs.layout.run(trained.run_id)
    return matches_fingerprint(inputs.layout, _stamp(trained), fingerprint(inputs, cfg), folder.eval_report, folder.eval_questions)


def run(inputs: EvalInputs, cfg: EvalConfig, *, events: EventSink = ignore) -> EvalReport:
    """Evaluate the run `cfg.run` (default: the latest finished one) and write its report beside it."""
    started = time.monotonic()
    layout = inputs.layout
    trained = _finished_run(layout, cfg)
    remove_partials(layout.cache / "eval_gguf")  # a GGUF half-written by a killed evaluation
    sets = question_sets(layout.dataset, cfg, inputs.questions)
    questions = [q for name in SETS for q in sets[name]]
    if not questions:
        raise EvalError(f"no questions to ask in {layout.dataset.root}: run `docpipe generate` first", kind=ErrorKind.empty_dataset)
    system = _system_prompt(layout)
    engine, answerers = _answerers(trained, layout, cfg, inputs, system, events)
    replies = {label: _answer(label, load, questions, system, cfg, layout, events) for label, load in answerers.items()}
    records = _score(questions, replies, layout, cfg, inputs, events)
    report = _report(trained, records, sets, engine, answerers, layout, cfg, started)
    _write(report, records, trained, layout)
    record_fingerprint(layout, _stamp(trained), fingerprint(inputs, cfg))
    return report


def _finished_run(layout: Layout, cfg: EvalConfig) -> TrainResult:
    return runs.finished_run(layout, cfg.run, EvalError)


def _stamp(trained: TrainResult) -> str:
    return f"{STAGE}-{trained.run_id}"  # one fingerprint per run: several runs may be evaluated side by side


def _system_prompt(layout: Layout) -> str:
    """The system message training used, so answers are asked as trained (a missing or damaged file: the default)."""
    try:
        return trained_system_prompt(read_records(layout.dataset.train, TrainingRecord, limit=1))
    except (OSError, RecordError):
        return trained_system_prompt([])


def _answerers(trained: TrainResult, layout: Layout, cfg: EvalConfig, inputs: EvalInputs, system: str, events: EventSink):
    """The models asked, by label: base and tuned on the chosen engine, then each exported GGUF of the run and --gguf."""
    from evals import answering

    gpu = probe().cuda is not None
    # auto: llama.cpp on the CPU (about twice transformers' speed there); transformers where a CUDA GPU is, or without llama.cpp
    engine = cfg.engine if cfg.engine != "auto" else ("llama.cpp" if installed("llama_cpp") and not gpu else "transformers")
    if engine == "llama.cpp" and not installed("llama_cpp"):
        raise EvalError(
            "eval.engine llama.cpp needs llama-cpp-python: pip install 'docpipe[local]', or use --engine transformers",
            kind=ErrorKind.backend_unavailable,
        )
    base = runs.base_folder(trained, layout, EvalError)
    adapter = Path(trained.adapter)
    threads = _threads(cfg)
    if engine == "transformers":
        import torch

        torch.set_num_threads(threads)
        loaders = {
            "base": lambda: answering.TransformersAnswerer(base, None),
            "tuned": lambda: answering.TransformersAnswerer(base, adapter),
        }
    else:
        from docpipe.runtime import pretrained

        source = pretrained.source_gguf(base, layout.base_models_cache)

        def gguf(label: str, with_adapter: bool) -> Callable[[], object]:
            def load():
                events(StageEvent(stage=STAGE, message=f"the {label} model as a {cfg.gguf_type.upper()} GGUF for llama.cpp"))
                path = _eval_gguf(trained, layout, cfg, label, base, adapter if with_adapter else None, source, system, threads)
                return answering.LlamaCppAnswerer(path, threads=threads)

            return load

        loaders = {"base": gguf("base", False), "tuned": gguf("tuned", True)}
    if installed("llama_cpp"):
        for label, path in _gguf_files(trained, layout, inputs).items():
            if engine == "llama.cpp" and label == f"tuned-{cfg.gguf_type}":
                continue  # the same weights as "tuned" itself: asking it again would only repeat its answers
            loaders[label] = lambda path=path: answering.LlamaCppAnswerer(path, threads=threads)
    where = "cuda" if gpu else "cpu"
    return (
        f"llama.cpp on {cfg.gguf_type.upper()} GGUFs" if engine == "llama.cpp" else f"transformers (base + adapter, float32, {where})"
    ), loaders


def _eval_gguf(
    trained: TrainResult,
    layout: Layout,
    cfg: EvalConfig,
    label: str,
    base: Path,
    adapter: Path | None,
    source: Path | None,
    system: str,
    threads: int,
) -> Path:
    """The F16 GGUF of base or tuned (export's writer), quantised to Q8_0 when asked; both kept in the cache."""
    from docpipe.runtime.gguf_quantize import quantize
    from docpipe.store import atomic_file
    from evals import answering

    f16 = answering.make_gguf(base, adapter, layout.eval_gguf(trained.run_id, label), source, system_prompt=system)
    if cfg.gguf_type == "f16":
        return f16
    dest = layout.eval_gguf(trained.run_id, label, cfg.gguf_type)
    if not dest.is_file():
        with atomic_file(dest) as tmp:
            quantize(f16, tmp, cfg.gguf_type, threads)
    return dest


def _threads(cfg: EvalConfig) -> int:
    """What was asked, else the cores not busy: the eval is the only work then (one thread ran 2x slower here)."""
    from docpipe.runtime.hardware import choose_threads

    return choose_threads(cfg.threads, probe())


def _gguf_files(trained: TrainResult, layout: Layout, inputs: EvalInputs) -> dict[str, Path]:
    """The run's exported quantised GGUFs (when export has run for this run) and the user's --gguf."""
    files: dict[str, Path] = {}
    if layout.export.result.is_file():
        exported = ExportResult.model_validate_json(layout.export.result.read_text(encoding="utf-8"))
        if exported.run_id == trained.run_id:
            for parity in exported.parity:
                path = layout.export.root / parity.file
                if parity.quantization not in ("f16", "bf16", "f32") and path.is_file():
                    files[f"tuned-{parity.quantization}"] = path
    if inputs.gguf:
        if not Path(inputs.gguf).is_file():
            raise EvalError(f"no GGUF file at {inputs.gguf}", kind=ErrorKind.missing_input)
        files["gguf"] = Path(inputs.gguf)
    return files


def _answer(label: str, load, questions: list[EvalQuestion], system: str, cfg: EvalConfig, layout: Layout, events: EventSink) -> list[str]:
    """One model's replies to every question, loaded, asked and released (models are not held side by side)."""
    from evals.answering import answer_questions

    answerer = load()
    try:
        answers = answer_questions(
            answerer,
            [q.question for q in questions],
            system=system,
            max_tokens=cfg.max_answer_tokens,
            cache=JsonCache(layout.answers_cache),
            progress=lambda done, total: events(StageEvent(stage=STAGE, phase=label, step=done, total=total)),
        )
    finally:
        answerer.close()
    return [a.text for a in answers]


def _score(
    questions: list[EvalQuestion], replies: dict[str, list[str]], layout: Layout, cfg: EvalConfig, inputs: EvalInputs, events: EventSink
) -> list[EvalRecord]:
    from evals.metrics import Corpus, TrainingAnswers, score_answer

    events(StageEvent(stage=STAGE, message="scoring the answers"))
    corpus = Corpus.from_documents(read_records(layout.documents, Document)) if layout.documents.is_file() else Corpus({})
    train = read_records(layout.dataset.train, TrainingRecord)  # another question's answer: Q&A only, not a rehearsed passage
    training = TrainingAnswers({r.id: (r.question, r.answer) for r in train if r.kind == "qa"}, cfg.regurgitation_ngram)
    judge = _judge(inputs, layout)
    records = []
    for i, question in enumerate(questions):
        scores = {label: score_answer(question, answers[i], corpus, cfg, training) for label, answers in replies.items()}
        if judge is not None:
            scores = {label: s.model_copy(update={"judge": judge(question, s)}) for label, s in scores.items()}
        records.append(EvalRecord(question=question, answers=scores))
    return records


def _judge(inputs: EvalInputs, layout: Layout):
    """The optional LLM judge (temperature 0, through the gateway and its cache), or None."""
    if inputs.judge is None:
        return None
    from docpipe.llm import open_llm
    from evals.judge import AnswerJudge, JudgeTask

    try:
        agent = AnswerJudge(open_llm(inputs.judge, cache_dir=layout.llm_cache))
    except (ImportError, FileNotFoundError, ValueError) as exc:
        raise EvalError(f"cannot open the judge {inputs.judge.model}: {exc}", kind=ErrorKind.backend_unavailable) from None

    def score(question: EvalQuestion, answer) -> int:
        task = JudgeTask(question.question, question.reference, question.quote, answer.answer, answer.key_facts)
        return agent.run(task).value.score

    return score


def _report(
    trained: TrainResult,
    records: list[EvalRecord],
    sets: dict[str, list[EvalQuestion]],
    engine: str,
    answerers: Answerers,
    layout: Layout,
    cfg: EvalConfig,
    started: float,
) -> EvalReport:
    from evals.stats import set_scores
    from evals.verdict import judge

    labels = list(answerers)
    present = [name for name in SETS if sets[name]]
    scores = {
        label: {name: set_scores([r.answers[label] for r in records if r.question.set == name], cfg) for name in present}
        for label in labels
    }
    verdict = judge(records, cfg)
    return EvalReport(
        run_id=trained.run_id,
        verdict=verdict.verdict,
        reasons=verdict.reasons,
        trust=verdict.trust,
        engine=engine,
        models=_model_names(trained, labels),
        sets=scores,
        comparisons=_comparisons(records, present, labels, layout, trained, cfg),
        loss_gap=_loss_gap(trained),
        questions={name: len(sets[name]) for name in present},
        confidence=cfg.confidence,
        seconds=round(time.monotonic() - started, 1),
        docpipe_version=__version__,
    )


def _comparisons(
    records: list[EvalRecord], present: list[str], labels: list[str], layout: Layout, trained: TrainResult, cfg: EvalConfig
) -> list[PairedComparison]:
    """Tuned vs base per set and on questions in new words together; each GGUF vs tuned; tuned vs the previous best run."""
    from evals.stats import compare, paired_answers

    pairs = [("base", "tuned"), *(("tuned", label) for label in labels if label not in ("base", "tuned"))]
    groups = [[name] for name in present]
    if "rephrased" in present and "unseen" in present:
        groups.append(["rephrased", "unseen"])  # the headline: facts asked in words never trained on
    found = []
    for a, b in pairs:
        for group in groups:
            if len(group) > 1 and a != "base":
                continue
            left, right = paired_answers(records, a, b, sets=group)
            if left:
                found.append(compare(left, right, cfg, a_label=a, b_label=b, question_set="+".join(group)))
    return found + _against_best(records, layout, trained, cfg)


def _against_best(records: list[EvalRecord], layout: Layout, trained: TrainResult, cfg: EvalConfig) -> list[PairedComparison]:
    """The run `OUT/best` names (the model to beat), on the questions both were asked."""
    from evals.stats import compare

    best = layout.best.read_text(encoding="utf-8").strip() if layout.best.is_file() else ""
    path = layout.run(best).eval_questions if best and best != trained.run_id else None
    if path is None or not path.is_file():
        return []
    theirs = {r.question.id: r.answers["tuned"] for r in read_records(path, EvalRecord) if "tuned" in r.answers}
    ours = {r.question.id: r.answers["tuned"] for r in records if r.question.set in ANSWERABLE and r.question.id in theirs}
    if not ours:
        return []
    return [compare({i: theirs[i] for i in ours}, ours, cfg, a_label=f"best ({best})", b_label="tuned", question_set="answerable")]


def _model_names(trained: TrainResult, labels: list[str]) -> dict[str, str]:
    names = {"base": f"{trained.base_model} (the base, untuned)", "tuned": f"run {trained.run_id} ({trained.base_model} + adapter)"}
    return {
        label: names.get(label, f"GGUF {label.removeprefix('tuned-')} of run {trained.run_id}" if label != "gguf" else "--gguf file")
        for label in labels
    }


def _loss_gap(trained: TrainResult) -> float | None:
    sft = trained.sft
    if sft.best_eval_loss is None or not sft.train_loss:
        return None
    return round(sft.best_eval_loss - sft.train_loss[-1].loss, 4)


def _write(report: EvalReport, records: list[EvalRecord], trained: TrainResult, layout: Layout) -> None:
    from evals.report import render_html, render_markdown

    folder = layout.run(trained.run_id)
    write_jsonl(folder.eval_questions, records)
    atomic_write_text(folder.eval_markdown, render_markdown(report, records, trained))
    atomic_write_text(folder.eval_html, render_html(report, records, trained))
    write_json(folder.eval_report, report)  # last: its presence says the evaluation is whole
