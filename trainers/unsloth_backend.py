"""The unsloth backend: LoRA, or QLoRA on a 4-bit base, on a CUDA GPU with Unsloth's kernels.

Unsloth patches transformers and TRL when it is imported (it swaps in its own SFTTrainer and
DPOTrainer), so it is imported first, before `trainers.hf_backend`, whose trainer set-up it
then shares: only the model loading differs. API as of unsloth 2026.10.7 (the `cuda` extra).
"""

from __future__ import annotations

from docpipe.runtime import offline
from trainers.backend import BackendUnavailable, TrainJob

offline.apply()  # without it, Unsloth's from_pretrained fetches a statistics repo from the Hub

try:
    import unsloth  # noqa: F401 - must precede transformers/trl so its patches apply
    from unsloth import FastLanguageModel
except ImportError as exc:
    raise BackendUnavailable(f"the unsloth backend needs unsloth ({exc.name} is missing): pip install 'docpipe[cuda]'") from exc
except (RuntimeError, NotImplementedError) as exc:  # raised at import on a machine with no GPU
    raise BackendUnavailable(f"unsloth cannot start here ({str(exc).strip().splitlines()[0]}); use --backend hf") from exc

from docpipe.contracts import StageResult  # noqa: E402 - after the offline switches / the patching import above
from trainers import hf_backend  # noqa: E402 - after the offline switches / the patching import above


class UnslothBackend:
    name = "unsloth"

    def sft(self, job: TrainJob) -> StageResult:
        if job.init_adapter:  # unsloth loads the base named in the adapter's config and the adapter, trainable
            model, tokenizer = _load(job, str(job.init_adapter))
        else:
            model, tokenizer = _load(job, str(job.base.path))
            o = job.options
            model = FastLanguageModel.get_peft_model(
                model,
                r=o.lora_rank,
                lora_alpha=o.lora_alpha,
                lora_dropout=o.lora_dropout,
                bias="none",
                target_modules="all-linear",
                use_gradient_checkpointing="unsloth",
                random_state=o.seed,
            )
        FastLanguageModel.for_training(model)
        return hf_backend.run_sft(job, model, tokenizer, peft_config=None)  # unsloth ignores a trainer's peft_config

    def dpo(self, job: TrainJob) -> StageResult:
        model, tokenizer = _load(job, str(job.init_adapter))
        FastLanguageModel.for_training(model)
        return hf_backend.run_dpo(job, model, tokenizer)


BACKEND = UnslothBackend()


def _load(job: TrainJob, name: str):
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=name,
        max_seq_length=job.options.max_seq_tokens,
        dtype=None,  # None: bf16 where the GPU has it
        load_in_4bit=job.options.qlora,
        local_files_only=True,
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
