"""The hf backend: LoRA SFT and DPO with transformers + peft + TRL, on CPU, CUDA or Apple's MPS.

Its trainer set-up (`run_sft`, `run_dpo`) is shared with the unsloth backend, which only loads
the model differently.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from docpipe.runtime.hardware import peak_rss_mb
from docpipe.store import atomic_folder
from trainers.backend import BackendUnavailable, TrainJob
from trainers.plan import CheckpointFolders, CheckpointTimer, KeepBest, TrainingPlan, plan_job

# TRL 1.16 still calls transformers' deprecated is_gradient_checkpointing; harmless until transformers 6.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

try:
    import torch
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar as _no_dataset_bars
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.logging import disable_progress_bar as _no_model_bars
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
except ImportError as exc:  # pragma: no cover - depends on the install
    raise BackendUnavailable(
        f"the hf backend needs transformers, peft, trl and datasets ({exc.name} is missing): pip install 'docpipe[train]'"
    ) from exc

from docpipe.contracts import LossPoint, StageResult  # noqa: E402 - after the offline switches / the patching import above

# Trainer writes tmp-checkpoint-N then renames it, so a checkpoint-N folder with its state is complete.
_CHECKPOINTS = CheckpointFolders("checkpoint-", "trainer_state.json")


class HFBackend:
    name = "hf"

    def sft(self, job: TrainJob) -> StageResult:
        model, tokenizer = load_model(job)
        if job.init_adapter:
            model = PeftModel.from_pretrained(model, str(job.init_adapter), is_trainable=True)
            return run_sft(job, model, tokenizer, peft_config=None)
        return run_sft(job, model, tokenizer, peft_config=lora_config(job))

    def dpo(self, job: TrainJob) -> StageResult:
        model, tokenizer = load_model(job)
        # Continue the SFT adapter; TRL copies it into a frozen "ref" adapter, so the SFT model
        # is the reference and the result is still one adapter on the plain base.
        model = PeftModel.from_pretrained(model, str(job.init_adapter), is_trainable=True)
        return run_dpo(job, model, tokenizer)


BACKEND = HFBackend()


def load_model(job: TrainJob):
    """The base model and tokenizer, in the precision this device trains fastest in."""
    torch.set_num_threads(job.threads)
    set_seed(job.options.seed)
    _no_dataset_bars(), _no_model_bars()  # docpipe draws its own progress bar
    tokenizer = AutoTokenizer.from_pretrained(job.base.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(job.base.path, dtype=train_dtype(job.device), attn_implementation="sdpa")
    return model.to(job.device), tokenizer


def train_dtype(device: str):
    # fp32 on CPU: bf16 measured ~10x slower on this kind of CPU (../shared/notes).
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def lora_config(job: TrainJob) -> LoraConfig:
    o = job.options
    return LoraConfig(
        r=o.lora_rank, lora_alpha=o.lora_alpha, lora_dropout=o.lora_dropout, target_modules="all-linear", task_type="CAUSAL_LM"
    )


def run_sft(job: TrainJob, model, tokenizer, peft_config) -> StageResult:
    """Supervised fine-tuning with the loss on the assistant's tokens only."""
    plan = _Plan(job, micro_batch(job, model, _longest(tokenizer, job.train_rows, ("completion",), job.options.max_seq_tokens)))
    args = SFTConfig(
        **_common_args(job, plan),
        learning_rate=job.options.learning_rate,
        max_length=job.options.max_seq_tokens,
        completion_only_loss=True,
        packing=False,
        **_length_grouping(SFTConfig),
    )
    trainer_class = _PlainLossSFTTrainer if job.device == "cpu" else SFTTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(job.train_rows),
        eval_dataset=Dataset.from_list(job.eval_rows) if job.eval_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    return _train(job, trainer, plan)


class _PlainLossSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer with transformers' plain cross-entropy loss, for CPU.

    TRL computes the loss with a chunked LM head that recomputes the logits in its backward pass
    to save memory; on CPU that took a third of each SmolLM2 step (49k-token vocabulary). The
    plain loss on the same labels (prompt and padding at -100) is the same number, faster; the
    memory it needs is in `_bytes_per_token`. GPUs keep TRL's (or Unsloth's) fused loss.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)


def run_dpo(job: TrainJob, model, tokenizer) -> StageResult:
    """Direct preference optimisation of a model that already carries the SFT adapter."""
    # TRL runs a pair's chosen and rejected answers in one forward pass: twice the tokens.
    longest = 2 * _longest(tokenizer, job.train_rows, ("chosen", "rejected"), job.options.max_seq_tokens)
    plan = _Plan(job, micro_batch(job, model, longest))
    args = DPOConfig(
        **_common_args(job, plan),
        learning_rate=job.options.dpo_learning_rate,
        beta=job.options.dpo_beta,
        max_length=job.options.max_seq_tokens,
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(job.train_rows),
        eval_dataset=Dataset.from_list(job.eval_rows) if job.eval_rows else None,
        processing_class=tokenizer,
    )
    return _train(job, trainer, plan)


def micro_batch(job: TrainJob, model, longest_tokens: int) -> int:
    """Pairs per forward pass: the most whose activations fit in half the free memory when they are
    all as long as the longest pair, and a divisor of batch_size (gradients accumulate to a full step).

    Activation memory grows with tokens per pass: SmolLM2 LoRA under TRL on CPU peaked at 15.5 GB
    for passes of 4 pairs of 837 tokens (about 4.2 MB a token; 8 such pairs were killed at 24 GB),
    while throughput barely depends on the pass size (186 vs 191 tokens/s for 2 vs 8 pairs of 160
    tokens, measured here), so smaller passes cost little.
    """
    size = job.options.batch_size
    fit = int(_free_memory(job.device) * 0.5 // (_bytes_per_token(model.config) * max(longest_tokens, 1)))
    return max(d for d in range(1, size + 1) if size % d == 0 and d <= max(1, fit))


def _bytes_per_token(config) -> int:
    """Training memory per token, fp32: saved activations of each block (about 24 x hidden + 10 x MLP
    width values, LoRA's dropout copies included) and the logits with their softmax, gradient and
    metrics (about 4 x vocabulary). Calibrated on SmolLM2 under TRL: 4.3 MB estimated, 4.2 measured."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    per_block = 24 * text.hidden_size + 10 * (getattr(text, "intermediate_size", None) or 4 * text.hidden_size)
    return 4 * (text.num_hidden_layers * per_block + 4 * text.vocab_size)


def _free_memory(device: str) -> int:
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    import psutil

    return psutil.virtual_memory().available


def _longest(tokenizer, rows: list[dict], answers: tuple[str, ...], cap: int) -> int:
    """Tokens in the longest prompt + answer as the chat template renders it, at most `cap`."""
    longest = 0
    for row in rows:
        for key in answers:
            text = tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=False)
            longest = max(longest, len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return min(longest, cap)


class _Plan:
    """The shared training plan, with each step cut into passes that fit in memory (gradients accumulate)."""

    def __init__(self, job: TrainJob, micro_batch: int):
        self.steps: TrainingPlan = plan_job(job)
        self.micro_batch, self.accumulation = micro_batch, job.options.batch_size // micro_batch


def _common_args(job: TrainJob, plan: _Plan) -> dict:
    o, evaluating, steps = job.options, bool(job.eval_rows), plan.steps
    return dict(
        # The plan's step count, stated: Trainer would derive the same, but the plan is the one truth.
        output_dir=str(job.work.checkpoints),
        num_train_epochs=job.epochs,
        max_steps=steps.total_steps,
        per_device_train_batch_size=plan.micro_batch,
        per_device_eval_batch_size=plan.micro_batch,
        # Stated, not left to defaults: unsloth's patched configs default to accumulation 2,
        # 8-bit AdamW and weight decay, which would change the steps and the updates.
        gradient_accumulation_steps=plan.accumulation,
        optim="adamw_torch",
        weight_decay=0.0,
        lr_scheduler_type="linear",
        warmup_steps=steps.warmup_steps,
        logging_steps=max(1, min(10, steps.eval_every)),
        eval_strategy="steps" if evaluating else "no",
        eval_steps=steps.eval_every if evaluating else None,
        save_strategy="no",  # checkpoints are timed by _TimedCheckpoints; the best adapter is kept by _KeepBest
        save_total_limit=1,
        seed=o.seed,
        data_seed=o.seed,
        report_to="none",
        disable_tqdm=True,
        bf16=train_dtype(job.device) == torch.bfloat16,
        use_cpu=job.device == "cpu",
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
        **_no_checkpointing(),
    )


def _no_checkpointing() -> dict:
    # Recomputing activations saves memory a small model does not need, and costs time.
    # transformers 5.2x renamed the option; the older name is kept for the unsloth pins.
    fields = SFTConfig.__dataclass_fields__
    return {"activation_checkpointing": False} if "activation_checkpointing" in fields else {"gradient_checkpointing": False}


def _length_grouping(config_class) -> dict:
    # Batches of similar length waste little on padding. Packing would waste nothing, but
    # without flash attention it attends over whole packed rows: slower on CPU.
    fields = config_class.__dataclass_fields__
    if "train_sampling_strategy" in fields:  # transformers >= 5.2x
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def _train(job: TrainJob, trainer, plan: _Plan) -> StageResult:
    resume = _CHECKPOINTS.newest(job.work.checkpoints)
    keep_best = KeepBest.open(job.work.best_state, job.options.early_stopping_patience, resuming=resume is not None)
    reporter = _Reporter(job, plan.steps)
    for callback in (PrinterCallback, ProgressCallback):  # raw log dicts and tqdm: the _Reporter replaces them
        trainer.remove_callback(callback)
    for callback in (_TimedCheckpoints(job.options.checkpoint_minutes), _KeepBest(keep_best, job.work.adapter), reporter):
        trainer.add_callback(callback)
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    if job.eval_rows and not any(e.get("step") == state.global_step and "eval_loss" in e for e in state.log_history):
        trainer.evaluate()  # the last steps count too
    if not job.work.adapter.is_dir():  # nothing held out to choose by: the final adapter
        save_adapter(trainer.model, job.work.adapter)
    wall = time.monotonic() - started
    return StageResult(
        stage=job.stage,
        adapter=str(job.work.adapter),
        steps=state.global_step,
        epochs=round(state.epoch or 0, 3),
        train_loss=_curve(state.log_history, "loss"),
        eval_loss=_curve(state.log_history, "eval_loss"),
        best_eval_loss=keep_best.best,
        best_step=keep_best.best_step,
        stopped_early=keep_best.stopped,
        resumed_from_step=_CHECKPOINTS.step(resume) if resume else None,
        tokens=reporter.tokens(state),
        tokens_per_s=round(reporter.tokens(state) / max(reporter.seconds, 1e-9), 1),
        wall_s=round(wall, 2),
        peak_memory_mb=peak_memory_mb(job.device),
    )


def save_adapter(model, folder: Path) -> None:
    """Write the trained adapter (only it: DPO's frozen reference copy stays behind) whole or not at all."""
    with atomic_folder(folder) as work:
        model.save_pretrained(str(work), selected_adapters=["default"])


def peak_memory_mb(device: str) -> float:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else peak_rss_mb()


def _curve(history: list[dict], key: str) -> list[LossPoint]:
    return [LossPoint(step=e["step"], epoch=round(e.get("epoch") or 0, 3), loss=e[key]) for e in history if key in e]


class _TimedCheckpoints(TrainerCallback):
    """Trainer's side of the shared `CheckpointTimer`: ask for a save when one is due."""

    def __init__(self, minutes: float):
        self.timer = CheckpointTimer(minutes)

    def on_step_end(self, args, state, control, **kwargs):
        if self.timer.due():
            control.should_save = True


class _KeepBest(TrainerCallback):
    """Trainer's side of the shared `KeepBest`: the best adapter is saved to `adapter`, and training stops on its word."""

    def __init__(self, keep_best: KeepBest, adapter: Path):
        self.keep_best, self.adapter = keep_best, adapter

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if loss is not None and self.keep_best.judge(state.global_step, float(loss), lambda: save_adapter(model, self.adapter)):
            control.should_training_stop = True


class _Reporter(TrainerCallback):
    """Loss, real tokens per second and step counts for the progress bar and the result.

    Time is summed over optimiser steps only, so held-out evaluations do not dilute tokens/s.
    """

    def __init__(self, job: TrainJob, plan: TrainingPlan):
        self.job, self.plan = job, plan
        self.loss = self.eval_loss = None
        self.tokens_at_start, self.step_started, self.seconds = None, 0.0, 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.tokens_at_start = state.num_input_tokens_seen

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds += time.monotonic() - self.step_started
        self.job.report(
            state.global_step,
            state.max_steps or self.plan.total_steps,
            loss=self.loss,
            eval_loss=self.eval_loss,
            tokens_per_s=self.tokens(state) / max(self.seconds, 1e-9),
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.loss = (logs or {}).get("loss", self.loss)
        self.eval_loss = (logs or {}).get("eval_loss", self.eval_loss)

    def tokens(self, state) -> int:
        return int(state.num_input_tokens_seen - (self.tokens_at_start or 0))
