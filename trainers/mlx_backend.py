"""The mlx backend: LoRA SFT with mlx-lm in-process (Apple Silicon GPU, or CPU elsewhere), writing
a peft-format adapter so that every later stage loads it in torch as if the hf backend had made it."""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docpipe.contracts import LossPoint, StageResult
from docpipe.runtime.hardware import peak_rss_mb
from docpipe.store import atomic_folder
from trainers.backend import BackendUnavailable, TrainJob
from trainers.data import sample
from trainers.plan import CheckpointFolders, CheckpointTimer, KeepBest, TrainingPlan, plan_job

try:
    import mlx.core as mx
    import mlx.optimizers as optim
    from mlx import nn
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm.tuner.datasets import ChatDataset
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load
except ImportError as exc:
    raise BackendUnavailable("mlx backend needs mlx and mlx-lm: pip install 'docpipe[mlx]'") from exc

log = logging.getLogger(__name__)

_PEFT_PREFIX = "base_model.model."  # where peft puts the wrapped model in its state dict
_CHECKPOINTS = CheckpointFolders("step-", "state.json", digits=8)  # folders appear whole (atomic_folder)


@dataclass
class _State:
    """What a checkpoint holds besides the weights (and the keep-best state, in `job.work.best_state`)."""

    step: int = 0
    train_loss: list[dict] = field(default_factory=list)
    eval_loss: list[dict] = field(default_factory=list)
    fingerprint: dict = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> _State:
        # Checkpoints of older versions also held the keep-best figures; those now live in their own file.
        saved = json.loads(path.read_text(encoding="utf-8"))
        return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})


class MLXBackend:
    name = "mlx"

    def sft(self, job: TrainJob) -> StageResult:
        """LoRA-tune `job.base` on the SFT rows and write the best adapter in peft format.

        Args:
            job: what to train; `job.work.checkpoints` is resumed from when it holds one.

        Returns:
            The stage's result; its `adapter` is `job.work.adapter`.
        """
        started = time.perf_counter()
        # mlx has no CPU thread-count setting, so job.threads is not used here.
        device = mx.cpu if job.device == "cpu" else mx.default_device()
        with mx.stream(device):
            run = _Run(job)
            resumed = run.resume()
            run.train()
            adapter = _write_peft(job.work.adapter, run.final_weights(), run.rank, run.alpha, job.options.lora_dropout, job.base.path)
            return run.result(adapter, resumed, wall_s=time.perf_counter() - started)

    def dpo(self, job: TrainJob) -> StageResult:
        raise BackendUnavailable("mlx-lm has no DPO; docpipe runs DPO with the hf backend")


BACKEND = MLXBackend()


class _Run:
    """One SFT run: model, data, optimiser and progress, so the steps above stay short."""

    def __init__(self, job: TrainJob):
        opts = job.options
        self.job, self.opts = job, opts
        self.rank, self.alpha = _lora_shape(job)
        self.model, tokenizer = _build_model(job.base.path, self.rank, self.alpha, opts.lora_dropout, opts.seed, job.init_adapter)
        self.train_rows = _encode(tokenizer, job.train_rows, opts.max_seq_tokens)
        held_out = _encode(tokenizer, sample(job.eval_rows, opts.eval_max_pairs, opts.seed), opts.max_seq_tokens)
        self.eval_batches = [_batch([held_out[i] for i in g]) for g in _length_groups(held_out, opts.batch_size)]
        self.plan = plan_job(job)
        self.groups = _length_groups(self.train_rows, opts.batch_size)
        # One epoch visits every group once, so an epoch is the plan's steps_per_epoch steps, as in the hf backend.
        assert len(self.groups) == self.plan.steps_per_epoch, (len(self.groups), self.plan)
        self.optimizer = optim.Adam(learning_rate=_schedule(opts.learning_rate, self.plan), bias_correction=True)
        self.state = _State(
            fingerprint={
                "base": str(job.base.path),
                "rank": self.rank,
                "alpha": self.alpha,
                "rows": len(job.train_rows),
                "batch_size": opts.batch_size,
                "seed": opts.seed,
            }
        )
        self.best_weights: dict | None = None
        self.keep_best = KeepBest(job.work.best_state, opts.early_stopping_patience)  # `resume` reads or resets the file
        self.tokens, self.train_s = 0, 0.0

    def resume(self) -> int | None:
        """Load the newest checkpoint of this same job, if there is one, and the keep-best state with it; returns its step."""
        step = self._load_checkpoint(_CHECKPOINTS.newest(self.job.work.checkpoints))
        self.keep_best = KeepBest.open(self.job.work.best_state, self.opts.early_stopping_patience, resuming=step is not None)
        return step

    def _load_checkpoint(self, found: Path | None) -> int | None:
        if found is None:
            return None
        state = _State.read(found / "state.json")
        if state.fingerprint != self.state.fingerprint:
            log.warning("ignoring checkpoint %s: it was made with other settings (%s)", found, state.fingerprint)
            return None
        self.model.load_weights(list(mx.load(str(found / "adapter.safetensors")).items()), strict=False)
        self.optimizer.state = tree_unflatten(list(mx.load(str(found / "optimizer.safetensors")).items()))
        if (found / "best.safetensors").is_file():
            self.best_weights = mx.load(str(found / "best.safetensors"))
        self.state = state
        return state.step

    def train(self) -> None:
        """Optimiser steps from the current one to the last, with held-out loss and checkpoints on the way."""
        loss_and_grad = nn.value_and_grad(self.model, _loss)
        timer, window = CheckpointTimer(self.opts.checkpoint_minutes), []
        self.model.train()
        while self.state.step < self.plan.total_steps and not self.keep_best.stops_at(self.state.step):
            rows = _group_for_step(self.groups, self.plan, self.state.step, self.opts.seed)
            batch, lengths = _batch([self.train_rows[i] for i in rows])
            mx.random.seed(self.opts.seed + self.state.step)  # the same dropout masks after a resume
            tic = time.perf_counter()
            (loss, _), grads = loss_and_grad(self.model, batch, lengths)
            self.optimizer.update(self.model, grads)
            mx.eval(self.model.trainable_parameters(), self.optimizer.state, loss)
            self.train_s += time.perf_counter() - tic
            self.tokens += int(lengths[:, 1].sum().item())
            self.state.step += 1
            window.append(loss.item())
            window = self._log_train(window)
            eval_loss = self._maybe_evaluate()
            self._report(loss.item(), eval_loss)
            if timer.due():
                self._checkpoint()
        if self.eval_batches and (not self.state.eval_loss or self.state.eval_loss[-1]["step"] != self.state.step):
            self._evaluate()  # the end always gets a held-out measurement
        self._checkpoint()

    def _log_train(self, window: list[float]) -> list[float]:
        # About 100 points per run, each the mean since the last: enough for a curve, small in JSON.
        every = max(1, self.plan.total_steps // 100)
        if self.state.step % every and self.state.step != self.plan.total_steps:
            return window
        self.state.train_loss.append({"step": self.state.step, "epoch": self._epoch(), "loss": sum(window) / len(window)})
        return []

    def _maybe_evaluate(self) -> float | None:
        if not self.eval_batches or not self.plan.evaluates_at(self.state.step):
            return None
        return self._evaluate()

    def _evaluate(self) -> float:
        """Held-out loss now, judged by the shared keep-best rule (which may stop the run)."""
        loss = _held_out_loss(self.model, self.eval_batches)
        self.state.eval_loss.append({"step": self.state.step, "epoch": self._epoch(), "loss": loss})
        self.keep_best.judge(self.state.step, loss, keep=self._keep_weights)
        return loss

    def _keep_weights(self) -> None:
        # mx arrays are never changed in place (the optimiser makes new ones), so references are a snapshot.
        self.best_weights = dict(tree_flatten(self.model.trainable_parameters()))

    def _report(self, loss: float, eval_loss: float | None) -> None:
        self.job.report(self.state.step, self.plan.total_steps, loss=loss, eval_loss=eval_loss, tokens_per_s=self._tokens_per_s())

    def _checkpoint(self) -> None:
        weights = dict(tree_flatten(self.model.trainable_parameters()))
        optimizer_state = dict(tree_flatten(self.optimizer.state))

        def write(folder: Path) -> None:
            mx.save_safetensors(str(folder / "adapter.safetensors"), weights)
            mx.save_safetensors(str(folder / "optimizer.safetensors"), optimizer_state)
            if self.best_weights is not None:
                mx.save_safetensors(str(folder / "best.safetensors"), self.best_weights)
            (folder / "state.json").write_text(json.dumps(asdict(self.state)), encoding="utf-8")

        root, name = self.job.work.checkpoints, _CHECKPOINTS.name(self.state.step)
        with atomic_folder(root / name) as folder:
            write(folder)
        for old in [*root.glob("step-*"), *root.glob(".step-*")]:  # the newest is all a resume needs; .tmp: killed saves
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def final_weights(self) -> dict:
        """The adapter with the best held-out loss, or the last one when nothing was held out."""
        return self.best_weights if self.best_weights is not None else dict(tree_flatten(self.model.trainable_parameters()))

    def result(self, adapter: Path, resumed: int | None, wall_s: float) -> StageResult:
        s, best = self.state, self.keep_best
        return StageResult(
            stage="sft",
            adapter=str(adapter),
            steps=s.step,
            epochs=self._epoch(),
            train_loss=[LossPoint(**p) for p in s.train_loss],
            eval_loss=[LossPoint(**p) for p in s.eval_loss],
            best_eval_loss=best.best,
            best_step=best.best_step,
            stopped_early=best.stopped,
            resumed_from_step=resumed,
            tokens=self.tokens,
            tokens_per_s=self._tokens_per_s(),
            wall_s=wall_s,
            peak_memory_mb=_peak_memory_mb(),
        )

    def _epoch(self) -> float:
        return self.plan.epoch_at(self.state.step)

    def _tokens_per_s(self) -> float:
        return self.tokens / self.train_s if self.train_s else 0.0


def _lora_shape(job: TrainJob) -> tuple[int, float]:
    """Rank and alpha: the init adapter's when training on from one (its shape is fixed), else the config's."""
    if job.init_adapter is None:
        return job.options.lora_rank, job.options.lora_alpha
    config = json.loads((Path(job.init_adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    return int(config["r"]), float(config["lora_alpha"])


def _build_model(base: Path, rank: int, alpha: float, dropout: float, seed: int, init_adapter: Path | None = None):
    """The base model from `base`, frozen, with LoRA on every linear layer of every block.

    mlx-lm's LoRALinear adds `scale * (x @ lora_a) @ lora_b`; peft adds `lora_alpha / r * B(A(x))`,
    so scale = alpha / rank gives the same update as peft with that alpha.

    Returns:
        (model, tokenizer): the mlx model and mlx-lm's tokenizer wrapper.
    """
    model, tokenizer = load(str(base))
    if mx.default_device() == mx.cpu:
        model.set_dtype(mx.float32)  # as the hf backend trains on CPU; also what the torch parity test compares
    model.freeze()
    mx.random.seed(seed)  # lora_a's random init
    linear_to_lora_layers(model, len(model.layers), {"rank": rank, "scale": alpha / rank, "dropout": dropout})
    if init_adapter is not None:
        model.load_weights(_from_peft(model, Path(init_adapter)), strict=False)
    mx.eval(model.parameters())
    return model, tokenizer


def _encode(tokenizer, rows: list[dict], max_seq_tokens: int) -> list[tuple[list[int], int]]:
    """(tokens, offset) per row, rendered with the base's chat template; loss falls on tokens[offset:].

    mlx-lm's ChatDataset with mask_prompt puts the offset at the length of the prompt rendered
    with the generation prompt, so only the assistant's answer (and its end-of-turn) is learnt.
    """
    chats = ChatDataset([{"messages": r["prompt"] + r["completion"]} for r in rows], tokenizer, mask_prompt=True)
    encoded = []
    for i in range(len(chats)):
        tokens, offset = chats.process(chats[i])
        encoded.append((list(tokens)[:max_seq_tokens], min(offset, max_seq_tokens)))
    return encoded


def _length_groups(encoded: list[tuple[list[int], int]], batch_size: int) -> list[list[int]]:
    """Row indices cut into batches of similar length (little padding); the last may be smaller."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _group_for_step(groups: list[list[int]], plan: TrainingPlan, step: int, seed: int) -> list[int]:
    """The batch of optimiser step `step`: each epoch of the plan visits every group once, in an order fixed
    by the seed and the epoch, so a resumed run sees the very batches the interrupted one would have."""
    epoch, index = plan.position(step)
    order = list(range(len(groups)))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return groups[order[index]]


def _batch(rows: list[tuple[list[int], int]]) -> tuple[mx.array, mx.array]:
    """Right-padded token ids (B, T) and per-row [offset, length], the layout mlx-lm's losses take."""
    width = max(len(tokens) for tokens, _ in rows)
    ids = [tokens + [0] * (width - len(tokens)) for tokens, _ in rows]
    return mx.array(ids, dtype=mx.int32), mx.array([[offset, len(tokens)] for tokens, offset in rows], dtype=mx.int32)


def _target_mask(lengths: mx.array, width: int) -> mx.array:
    """(B, width - 1): which next-token targets carry loss: the answer's tokens, no prompt, no padding.

    Target t is token t + 1. mlx-lm's default_loss uses `<= length`, which also trains on the first
    padding token of every row (ml-explore/mlx-lm PR #1697); `< length` stops at the last real one.
    """
    positions = mx.arange(1, width)
    return (positions >= lengths[:, 0:1]) & (positions < lengths[:, 1:])


def _loss(model, batch: mx.array, lengths: mx.array) -> tuple[mx.array, mx.array]:
    """Mean cross-entropy over the answer tokens, and how many there were."""
    logits = model(batch[:, :-1])
    mask = _target_mask(lengths, batch.shape[1])
    ntoks = mask.sum()
    ce = (nn.losses.cross_entropy(logits, batch[:, 1:]) * mask).astype(mx.float32).sum()
    return ce / mx.maximum(ntoks, 1), ntoks  # a row whose answer was truncated away has no targets


def _held_out_loss(model, batches: list[tuple[mx.array, mx.array]]) -> float:
    """Token-weighted mean loss over the held-out batches, without dropout."""
    model.eval()
    total, count = mx.array(0.0), mx.array(0)
    for batch, lengths in batches:
        loss, ntoks = _loss(model, batch, lengths)
        total, count = total + loss * ntoks, count + ntoks
        mx.eval(total, count)
    model.train()
    return (total / mx.maximum(count, 1)).item()


def _schedule(peak: float, plan: TrainingPlan) -> Callable:
    """Linear warm-up over the plan's warm-up steps, then linear decay to zero, as the hf backend."""
    warmup = plan.warmup_steps
    decay = optim.linear_schedule(peak, 0.0, max(1, plan.total_steps - warmup))
    return optim.join_schedules([optim.linear_schedule(0.0, peak, warmup), decay], [warmup])


def _write_peft(adapter_dir: Path, weights: dict, rank: int, alpha: float, dropout: float, base: Path) -> Path:
    """Write mlx LoRA weights as a peft adapter (adapter_config.json + adapter_model.safetensors).

    mlx keeps lora_a as (in, r) and lora_b as (r, out) and computes x @ a @ b; peft's lora_A/lora_B
    are torch Linear weights, (r, in) and (out, r): the same matrices transposed. mlx's scale is
    alpha / rank (see `_build_model`), so peft's lora_alpha = scale * r = alpha.
    """
    tensors, modules = {}, set()
    for name, value in weights.items():
        module, leaf = name.rsplit(".", 1)  # "model.layers.0.self_attn.q_proj", "lora_a"
        modules.add(module)
        tensors[f"{_PEFT_PREFIX}{module}.lora_{leaf[-1].upper()}.weight"] = value.T.astype(mx.float32)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base),
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": dropout,
        "target_modules": sorted(modules),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "inference_mode": True,
    }

    def write(folder: Path) -> None:
        mx.save_safetensors(str(folder / "adapter_model.safetensors"), tensors, metadata={"format": "pt"})
        (folder / "adapter_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    with atomic_folder(adapter_dir) as folder:
        write(folder)
    return adapter_dir


def _from_peft(model, adapter_dir: Path) -> list[tuple[str, mx.array]]:
    """A peft adapter's weights as (mlx name, array) pairs for `model.load_weights`; the inverse of `_write_peft`."""
    params = dict(tree_flatten(model.trainable_parameters()))
    weights = []
    for key, value in mx.load(str(adapter_dir / "adapter_model.safetensors")).items():
        module, kind = key.removeprefix(_PEFT_PREFIX).rsplit(".lora_", 1)  # kind: "A.weight" | "B.weight"
        name = f"{module}.lora_{kind[0].lower()}"
        if name not in params or params[name].shape != value.T.shape:
            raise ValueError(
                f"{adapter_dir}: {key} does not fit a LoRA layer of this base model "
                f"(mlx LoRA covers the linear layers of the transformer blocks)"
            )
        weights.append((name, value.T.astype(params[name].dtype)))
    return weights


def _peak_memory_mb() -> float:
    """Peak GPU memory mlx allocated on Metal; peak resident memory of the process on CPU."""
    if mx.default_device() == mx.gpu:
        return mx.get_peak_memory() / 2**20
    return peak_rss_mb()
