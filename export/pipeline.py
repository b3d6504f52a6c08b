"""The export stage: a finished training run -> OUT/export/ with GGUF files, parity.json, a
Modelfile and a model card.

Order: load the trained model (base + adapter), take the parity reference from it, merge, write
the float GGUF with gguf-py, quantise the rest with llama.cpp, then compare every file with the
reference. The Modelfile is written only when the gate passes, so `ollama create` never gets a
file that behaves unlike the trained model. GGUF files are written atomically and recorded in a
manifest as they finish: an interrupted export keeps what it finished and resumes after it.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from docpipe import __version__, runs
from docpipe.config import ExportConfig
from docpipe.contracts import ExportResult, QuantParity, TrainingRecord, TrainResult
from docpipe.errors import ErrorKind
from docpipe.events import EventSink, StageEvent, ignore
from docpipe.layout import DatasetLayout, Layout
from docpipe.runtime import pretrained
from docpipe.stage import ExportInputs, matches_fingerprint, record_fingerprint
from docpipe.store import RecordError, atomic_file, atomic_write_text, read_records, remove_partials, sha256_file, stable_hash, write_json
from export import ExportError

STAGE = "export"
FLOATS = ("f16", "bf16", "f32")  # written by gguf-py (at most one per export); the rest are quantised from it


def fingerprint(inputs: ExportInputs, cfg: ExportConfig) -> str:
    """The run exported (its id and adapter, by hash), the name, the settings and docpipe's version."""
    layout = inputs.layout
    trained = finished_run(layout, cfg.run)
    adapter = Path(trained.adapter) / "adapter_model.safetensors"
    return stable_hash(
        STAGE, trained.run_id, sha256_file(adapter) if adapter.is_file() else None, model_name(cfg.name, layout.root), cfg, __version__
    )


def is_current(inputs: ExportInputs, cfg: ExportConfig) -> bool:
    """A passed export of the same run with the same settings, its files all there."""
    folder = inputs.layout.export
    if not matches_fingerprint(inputs.layout, STAGE, fingerprint(inputs, cfg), folder.result, folder.modelfile):
        return False
    done = ExportResult.model_validate_json(folder.result.read_text(encoding="utf-8"))
    return done.passed and all((folder.root / p.file).is_file() for p in done.parity)


def run(inputs: ExportInputs, cfg: ExportConfig, *, events: EventSink = ignore) -> ExportResult:
    """Export the run `cfg.run` (default: the latest finished one) into OUT/export/."""
    from docpipe.runtime import gguf_quantize as quantize
    from docpipe.runtime import gguf_writer
    from docpipe.runtime.hardware import choose_threads, probe
    from docpipe.runtime.merge import load_trained, merged_state
    from export import parity
    from export.modelfile import render_modelfile
    from export.ollama_template import TemplateError, ollama_template

    layout, opts = inputs.layout, cfg
    out_dir, folder = layout.root, layout.export
    steps = iter(range(1, 1000))

    def step(message: str) -> None:
        events(StageEvent(stage=STAGE, step=next(steps), message=message))

    started = time.monotonic()
    trained = finished_run(layout, opts.run)
    name = model_name(opts.name, out_dir)
    _check_quantizations(opts)
    folder.root.mkdir(parents=True, exist_ok=True)
    remove_partials(folder.root)  # a GGUF half-written by a killed export
    threads = choose_threads(opts.threads, probe())
    base = runs.base_folder(trained, layout, ExportError)

    step("loading the trained model")
    tick = time.monotonic()
    try:
        model, tokenizer = load_trained(base, Path(trained.adapter))
    except Exception as exc:  # noqa: BLE001 - safetensors, peft and transformers each raise their own kinds for a damaged file
        raise ExportError(
            f"cannot load the trained model ({_first_line(exc)}): base {base}, adapter {trained.adapter}; "
            "if a file is damaged, delete the run folder and run `docpipe train` again"
        ) from exc
    load_s = time.monotonic() - tick
    source = pretrained.source_gguf(base, layout.base_models_cache)
    tokenizer_fields = _tokenizer_fields(source, base, tokenizer, model.config.vocab_size)
    add_bos = next((f.value for f in tokenizer_fields if f.key == "tokenizer.ggml.add_bos_token"), False)
    try:
        template = ollama_template(
            lambda m: tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
            bos_token=tokenizer.bos_token,
            eos_token=tokenizer.eos_token,
            add_bos=bool(add_bos),
        )
    except TemplateError as exc:
        raise ExportError(str(exc)) from None
    system = training_system_prompt(layout.dataset)

    step("computing the trained model's reference logits")
    tick = time.monotonic()
    reference = parity.reference(
        model,
        tokenizer,
        parity_conversations(layout.dataset, opts.parity_chats),
        runtime_bos=template.runtime_bos,
        max_tokens=opts.parity_max_tokens,
    )
    reference_s = time.monotonic() - tick
    warnings = _warnings(trained, opts, system)
    merge_base = f"float32 dequantised from {trained.dequantised_from}" if trained.dequantised_from else "float32"
    provenance = {
        "run_id": trained.run_id,
        "base_model": trained.base_model,
        "base_sha256": trained.base_sha256,
        "adapter_sha256": sha256_file(Path(trained.adapter) / "adapter_model.safetensors"),
        "dataset_sha256": trained.dataset_sha256,
        "merge_base": merge_base,
        "docpipe_version": __version__,
    }
    key = stable_hash(provenance, name, system, opts.quantizations)
    manifest_path = folder.manifest
    manifest = _read_manifest(manifest_path, key)

    master = next((q for q in opts.quantizations if q in FLOATS), "f16")
    files = {q: folder.gguf(name, q) for q in opts.quantizations}
    master_path = files.get(master, layout.export_cache / folder.gguf(name, master).name)
    if not _done(manifest, master, master_path):
        step(f"merging the adapter and writing {master_path.name}")
        tick = time.monotonic()
        fields = [*tokenizer_fields, *_metadata(name, trained, tokenizer.chat_template, system, provenance)]
        state, config = merged_state(model), model.config
        with atomic_file(master_path) as tmp:
            gguf_writer.write_gguf(tmp, state, config, fields, dtype=master, source=source)
        del state
        _record(manifest_path, manifest, master, master_path, time.monotonic() - tick)
    del model  # the GGUFs and the reference logits are all that is needed from here
    for quant, path in files.items():
        if quant == master or _done(manifest, quant, path):
            continue
        step(f"quantising {path.name}")
        tick = time.monotonic()
        with atomic_file(path) as tmp:
            quantize.quantize(master_path, tmp, quant, threads)
        _record(manifest_path, manifest, quant, path, time.monotonic() - tick)

    results = []
    for quant, path in files.items():
        step(f"checking {path.name} against the trained model")
        tick = time.monotonic()
        figures = parity.compare(path, reference, threads=threads)
        results.append(_judge(quant, path, figures, opts, manifest["files"][quant]["write_s"], time.monotonic() - tick))
    passed = all(r.gate != "fail" for r in results)
    write_json(
        folder.parity,
        {
            "passed": passed,
            "reference": "the trained model (base + adapter, unmerged, float32) in transformers",
            "chats": len(reference.chats),
            "probes": len(reference.probes) + len(reference.prompts),
            "notes": reference.notes,
            "files": [r.model_dump(mode="json") for r in results],
        },
    )
    modelfile = folder.modelfile
    if passed:
        num_ctx = opts.num_ctx or trained.config.max_seq_tokens
        atomic_write_text(
            modelfile,
            render_modelfile(
                gguf_file=files[opts.modelfile_quantization].name,
                template=template,
                system=system,
                num_ctx=num_ctx,
                license_text=trained.base_license,
                header=f"{name}: {trained.base_model} fine-tuned by docpipe {__version__} (run {trained.run_id})",
                parameters={"temperature": opts.temperature, "top_p": opts.top_p, "repeat_penalty": opts.repeat_penalty},
            ),
        )
    else:
        modelfile.unlink(missing_ok=True)  # an older Modelfile must not point at files that just failed
    result = ExportResult(
        name=name,
        run_id=trained.run_id,
        base_model=trained.base_model,
        merge_base=merge_base,
        warnings=warnings,
        parity=results,
        passed=passed,
        modelfile=str(modelfile) if passed else None,
        modelfile_quantization=opts.modelfile_quantization,
        chat_template_family=template.family,
        load_s=round(load_s, 2),
        reference_s=round(reference_s, 2),
        wall_s=round(time.monotonic() - started, 2),
        docpipe_version=__version__,
    )
    from export.card import model_card

    atomic_write_text(folder.card, model_card(result, trained, layout))
    write_json(folder.result, result)
    record_fingerprint(layout, STAGE, fingerprint(inputs, cfg))
    return result


def finished_run(layout: Layout, run_id: str | None) -> TrainResult:
    """The training run to export: `run_id`, or the most recently finished one."""
    return runs.finished_run(layout, run_id, ExportError)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def model_name(name: str | None, out_dir: Path) -> str:
    """A name Ollama accepts (lowercase letters, digits, '.', '-', '_'), from the option or the output folder."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", (name or Path(out_dir).resolve().name).lower()).strip("-._")
    if name and slug != name:
        raise ExportError(f"model name {name!r} has characters Ollama does not accept; use e.g. {slug or 'my-docs'!r}")
    return slug or "docpipe-model"


def training_system_prompt(dataset: DatasetLayout) -> str:
    """The system message the model was trained with (the first training record's)."""
    from docpipe.runtime.chat_format import trained_system_prompt

    return trained_system_prompt(_training_records(dataset.train, 1))


def parity_conversations(dataset: DatasetLayout, count: int) -> list[list[dict]]:
    """Held-out conversations (training ones when there are none): what the gate compares logits on."""
    for path in (dataset.eval, dataset.train):
        chats = [[m.model_dump() for m in r.messages] for r in _training_records(path, count)]
        if chats:
            return chats
    raise ExportError(
        f"no conversations in {dataset.root} to check the export against; run `docpipe generate` first", kind=ErrorKind.missing_input
    )


def _training_records(path: Path, limit: int) -> list[TrainingRecord]:
    """The first `limit` records of train.jsonl or eval.jsonl (none when the file is missing)."""
    try:
        return read_records(path, TrainingRecord, limit) if path.is_file() else []
    except RecordError as exc:
        raise ExportError(f"{path} {exc}: run `docpipe generate` again", kind=ErrorKind.damaged) from None


def _tokenizer_fields(source: Path | None, base: Path, tokenizer: Any, vocab_size: int) -> list:
    from docpipe.runtime.gguf_vocab import tokenizer_fields

    return tokenizer_fields(source, base, tokenizer, vocab_size)


def _metadata(name: str, trained: TrainResult, chat_template: str, system: str, provenance: dict) -> list:
    """The chat template, the system prompt `docpipe chat` uses, and provenance under general.*."""
    from gguf import GGUFValueType as T

    from docpipe.runtime.gguf_vocab import Field, chat_fields

    fields = [
        Field("general.name", name, T.STRING),
        Field("general.type", "model", T.STRING),
        Field("general.base_model.count", 1, T.UINT32),
        Field("general.base_model.0.name", trained.base_model, T.STRING),
        *chat_fields(chat_template, system),
    ]
    if trained.base_license:
        fields.append(Field("general.license", trained.base_license, T.STRING))
    fields += [Field(f"general.docpipe.{key}", str(value), T.STRING) for key, value in provenance.items() if value]
    return fields


def _judge(quant: str, path: Path, figures: dict, opts: ExportConfig, write_s: float, check_s: float) -> QuantParity:
    """pass/fail against the configured thresholds; `report` for types with none (token ids must match always)."""
    limits = opts.gate.get(quant)
    reasons = []
    if figures["token_mismatches"]:
        reasons.append(f"{len(figures['token_mismatches'])} probes tokenise differently")
    if limits and figures["top1_agreement"] is not None and figures["top1_agreement"] < limits.min_top1:
        reasons.append(f"top-1 agreement {figures['top1_agreement']:.3f} < {limits.min_top1}")
    if limits and figures["mean_kl"] is not None and figures["mean_kl"] > limits.max_mean_kl:
        reasons.append(f"mean KL {figures['mean_kl']:.2e} > {limits.max_mean_kl}")
    gate = "fail" if reasons else ("pass" if limits else "report")
    return QuantParity(
        quantization=quant,
        file=path.name,
        size_mb=round(path.stat().st_size / 2**20, 1),
        write_s=round(write_s, 2),
        check_s=round(check_s, 2),
        gate=gate,
        reason="; ".join(reasons) or None,
        **figures,
    )


def _warnings(trained: TrainResult, opts: ExportConfig, system: str) -> list[str]:
    from export.modelfile import altered

    warnings = []
    if trained.dequantised_from:
        warnings.append(
            f"the base was dequantised from {trained.dequantised_from}: the F16 file holds those weights plus the "
            "fine-tune, and quantising it again compounds rounding (see parity.json for what it cost)"
        )
    if opts.modelfile_quantization not in opts.gate:
        warnings.append(f"the Modelfile uses {opts.modelfile_quantization}, whose parity is reported but not gated")
    if altered(system):
        warnings.append(
            'the system prompt holds text an Ollama Modelfile cannot carry as is (a line ending in """ or '
            "invisible control characters); the Modelfile's SYSTEM differs from training there"
        )
    return warnings


def _check_quantizations(opts: ExportConfig) -> None:
    if opts.modelfile_quantization not in opts.quantizations:
        raise ExportError(
            f"export.modelfile_quantization {opts.modelfile_quantization!r} is not in export.quantizations "
            f"({', '.join(opts.quantizations)})"
        )
    if len(set(opts.quantizations)) != len(opts.quantizations):
        raise ExportError("export.quantizations lists a type twice")
    if sum(q in FLOATS for q in opts.quantizations) > 1:
        raise ExportError(f"list only one of {', '.join(FLOATS)} in export.quantizations: the others are made from it")


def _read_manifest(path: Path, key: str) -> dict:
    """Files already written for this exact export (same run, settings and docpipe version)."""
    if path.is_file():
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("key") == key:
            return manifest
    return {"key": key, "files": {}}


def _done(manifest: dict, quant: str, path: Path) -> bool:
    entry = manifest["files"].get(quant)
    return bool(entry) and path.is_file() and path.stat().st_size == entry["bytes"]


def _record(manifest_path: Path, manifest: dict, quant: str, path: Path, write_s: float) -> None:
    manifest["files"][quant] = {"file": path.name, "bytes": path.stat().st_size, "write_s": round(write_s, 2)}
    write_json(manifest_path, manifest)
