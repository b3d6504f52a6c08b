"""The train stage: the dataset from `docpipe generate` -> a LoRA adapter in OUT/runs/<id>/.

The run id is a hash of what determines the result (dataset, base model, settings), so the same
command after a crash finds the same folder and its checkpoints, and after success reuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from docpipe import __version__
from docpipe.config import TrainConfig, updated
from docpipe.contracts import StageResult, TrainResult, TrainSettings
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.events import EventSink, ignore
from docpipe.runtime import hardware, pretrained
from docpipe.runtime.hardware import Hardware
from docpipe.stage import TrainInputs
from docpipe.store import atomic_folder, write_json
from trainers import data, dispatch
from trainers.backend import BackendUnavailable, TrainJob
from trainers.exposures import EpochPlan, exposures, plan_epochs

log = logging.getLogger(__name__)

# Settings that change how fast a run goes, not what it produces: not part of the run id.
_NOT_IN_RUN_ID = {"threads", "checkpoint_minutes"}


STAGE = "train"


class TrainError(DocpipeError, RuntimeError):
    """Training could not produce an adapter on any backend; the message says why."""

    stage = STAGE


class DivergedError(TrainError):
    """The loss stopped being a number: a setting (most often the learning rate) is wrong, not the backend."""

    kind = ErrorKind.nan_loss


def check_finite(result: StageResult, learning_rate: float) -> None:
    """Raise `DivergedError` when the logged training loss became NaN or infinite: the adapter would be garbage."""
    bad = next((p for p in result.train_loss if not math.isfinite(p.loss)), None)
    if bad is not None:
        raise DivergedError(
            f"{result.stage}: the training loss is {bad.loss} at step {bad.step}: lower train.learning_rate (now {learning_rate:g})"
        )


def fingerprint(inputs: TrainInputs, cfg: TrainConfig) -> str:
    """The run id these inputs and settings give: the dataset files and base model by hash, and the settings."""
    rows = data.load(inputs.layout.dataset, inputs.layout.root, with_dpo=cfg.dpo)
    base = pretrained.resolve(cfg.base_model, inputs.layout.base_models_cache)
    choice = dispatch.choose(cfg.backend, cfg.device, inputs.hardware or hardware.probe())
    return run_id(rows.sha256, base, _resolved(cfg, plan_epochs(rows, cfg, choice.backend, choice.device)))


def is_current(inputs: TrainInputs, cfg: TrainConfig) -> bool:
    return inputs.layout.run(fingerprint(inputs, cfg)).result.is_file()


def run(inputs: TrainInputs, cfg: TrainConfig, *, events: EventSink = ignore) -> TrainResult:
    """Train on OUT/dataset/ and write OUT/runs/<id>/ (adapter/, train_result.json, train_config.json)."""
    layout, opts = inputs.layout, cfg
    started = time.monotonic()
    rows = data.load(layout.dataset, layout.root, with_dpo=opts.dpo)
    base = pretrained.resolve(opts.base_model, layout.base_models_cache)
    template = pretrained.chat_template(base.path)
    hw = inputs.hardware or hardware.probe()
    choice = dispatch.choose(opts.backend, opts.device, hw)
    if opts.qlora and choice.backend != "unsloth":
        raise BackendUnavailable(
            f"QLoRA (a 4-bit base) needs the unsloth backend on a CUDA GPU, and this run gets "
            f"{choice.backend} on {choice.device}; drop --qlora"
        )
    epochs = plan_epochs(rows, opts, choice.backend, choice.device)
    effective = updated(_resolved(opts, epochs), threads=hardware.choose_threads(opts.threads, hw))
    run_dir = layout.run(run_id(rows.sha256, base, effective))
    if run_dir.result.is_file():
        return TrainResult.model_validate_json(run_dir.result.read_text(encoding="utf-8"))
    write_json(run_dir.config, _config_record(effective, base, choice))

    def job(stage: str, choice: dispatch.Choice, train: list, held_out: list, init: Path | None) -> TrainJob:
        return TrainJob(
            stage,
            base,
            train,
            held_out,
            run_dir.stage(stage, choice.backend, choice.device),
            effective,
            effective.epochs if stage == "sft" else effective.dpo_epochs,
            choice.device,
            effective.threads,
            init,
            events,
        )

    held_out = data.sample(rows.eval, opts.eval_max_pairs, opts.seed)
    sft, used, fallbacks = _with_fallbacks(choice, hw, lambda c: job("sft", c, rows.train, held_out, None), "sft")
    dpo = None
    if opts.dpo:
        dpo_choice = used if used.backend != "mlx" else dispatch.fallback_chain(used, hw)[0]  # mlx-lm has no DPO
        train, held = _split_preferences(rows.dpo, opts)
        dpo, _, more = _with_fallbacks(dpo_choice, hw, lambda c: job("dpo", c, train, held, Path(sft.adapter)), "dpo")
        fallbacks += more
    adapter = run_dir.adapter
    _copy_folder(Path((dpo or sft).adapter), adapter)
    kept_epochs = sft.epochs * sft.best_step / sft.steps if sft.best_step and sft.steps else sft.epochs  # the kept adapter's
    seen, per_fact = exposures(rows, epochs, kept_epochs)
    if per_fact:
        write_json(run_dir.exposures, per_fact)
    result = TrainResult(
        run_id=run_dir.id,
        backend=used.backend,
        device=_device_name(used, hw),
        dispatch=choice.reason,
        fallbacks=fallbacks,
        base_model=base.name,
        base_path=str(base.path),
        base_source=base.source,
        base_sha256=base.sha256,
        dequantised_from=base.dequantised_from,
        base_license=base.license,
        chat_template=template,
        adapter=str(adapter),
        dataset_sha256=rows.sha256,
        sft=sft,
        dpo=dpo,
        threads=effective.threads,
        wall_s=round(time.monotonic() - started, 2),
        peak_memory_mb=max(s.peak_memory_mb for s in (sft, dpo) if s),
        config=_config_record(effective, base, used),
        exposures=seen,
        docpipe_version=__version__,
    )
    write_json(run_dir.result, result)
    return result


def _resolved(opts: TrainConfig, plan: EpochPlan) -> TrainConfig:
    """The settings with the epochs planned (exposures per fact within the time budget) when the user gave none."""
    return updated(opts, epochs=plan.epochs)


def run_id(dataset_sha256: str, base: pretrained.ResolvedBase, opts: TrainConfig) -> str:
    identity = {
        "dataset": dataset_sha256,
        "base": base.sha256 or str(base.path),
        "config": opts.model_dump(mode="json", exclude=_NOT_IN_RUN_ID),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def _with_fallbacks(
    choice: dispatch.Choice, hw: Hardware, make_job: Callable[[dispatch.Choice], TrainJob], stage: str
) -> tuple[StageResult, dispatch.Choice, list[str]]:
    """Train with `choice`; if it fails, with each backend of its fallback chain in turn."""
    failures: list[str] = []
    for attempt in [choice, *dispatch.fallback_chain(choice, hw)]:
        job = make_job(attempt)
        done = job.work.result
        if done.is_file():  # finished before a later stage was interrupted: not trained again
            return StageResult.model_validate_json(done.read_text(encoding="utf-8")), attempt, failures
        try:
            result = getattr(dispatch.load(attempt.backend), stage)(job)
            result = result.model_copy(update={"backend": f"{attempt.backend} on {attempt.device}"})
            check_finite(result, job.options.dpo_learning_rate if stage == "dpo" else job.options.learning_rate)
            write_json(done, result)
            shutil.rmtree(job.work.checkpoints, ignore_errors=True)  # the stage is done; its adapter is kept
            return result, attempt, failures
        except (KeyboardInterrupt, data.DatasetError, DivergedError):  # another backend would not fix these
            raise
        except Exception as exc:  # noqa: BLE001 - any backend failure moves down the chain, and is recorded
            reason = f"{attempt.backend} on {attempt.device}: {_one_line(exc)}"
            log.warning("%s failed: %s", stage, reason)
            failures.append(reason)
    raise TrainError(f"{stage} failed on every backend tried: " + "; ".join(failures))


def _split_preferences(pairs: list[dict], opts: TrainConfig) -> tuple[list[dict], list[dict]]:
    """A seeded sample (dpo_max_pairs) and a small held-out slice to watch the DPO loss on."""
    pairs = data.sample(pairs, opts.dpo_max_pairs, opts.seed)
    if len(pairs) < 20:
        return pairs, []
    shuffled = random.Random(opts.seed).sample(pairs, len(pairs))
    held = min(64, len(pairs) // 10)
    return shuffled[held:], shuffled[:held]


def _config_record(opts: TrainConfig, base: pretrained.ResolvedBase, choice: dispatch.Choice) -> TrainSettings:
    return TrainSettings(
        **{
            **opts.model_dump(mode="json"),
            "backend": choice.backend,
            "device": choice.device,
            "base_path": str(base.path),
            "base_sha256": base.sha256,
            "dequantised_from": base.dequantised_from,
        }
    )


def _device_name(choice: dispatch.Choice, hw: Hardware) -> str:
    return f"cuda ({hw.cuda})" if choice.device == "cuda" and hw.cuda else choice.device


def _copy_folder(source: Path, target: Path) -> None:
    with atomic_folder(target) as work:
        shutil.copytree(source, work, dirs_exist_ok=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


__all__ = ["BackendUnavailable", "TrainError", "run", "run_id"]
