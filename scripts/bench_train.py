#!/usr/bin/env python
"""Benchmark training: docpipe's hf backend against a plain TRL SFTTrainer script with TRL's
default settings, on the same base model, data, threads and machine.

    .venv/bin/python scripts/bench_train.py [--dataset OUT/dataset] [--base-model smollm2-135m-instruct] [--steps 20] [--batch-size 8] [--threads N] [--eval-pairs 64] [--out bench-results/train.json] [--quick]

Each contender trains in its own subprocess (peak RSS and torch's thread settings stay its own)
and saves its final LoRA adapter; both adapters are then scored by one shared function: mean loss
over the assistant's tokens of the same fixed held-out sample, rendered with the base's chat
template, in fp32 with dropout off. Tokens are real (non-padding) tokens, and time is summed over
optimiser steps only. Model FLOPs utilisation divides the achieved FLOP/s by the machine's fp32
matmul rate, measured first at a SmolLM2-shaped matmul. --quick trains a tiny random model for
3 steps, to smoke-test the script in about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests/trainers/tiny_model.py in --quick
CORPUS = ROOT.parent / "shared" / "corpus"
MATMUL = (2048, 576, 1536)  # (batch 8 x 256 tokens) x hidden @ hidden x MLP width of SmolLM2-135M
TARGETS = {"speedup": 1.5, "mfu": 0.60}


def matmul_gflops(threads: int, repeats: int = 5) -> float:
    """The machine's fp32 matmul rate at `threads`: 2*M*N*K / t, best of `repeats`."""
    import torch

    torch.set_num_threads(threads)
    m, k, n = MATMUL
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b  # warm-up: the first call allocates and picks kernels
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, (time.perf_counter() - started) / 10)
    return 2 * m * n * k / best / 1e9


def _rows(args) -> tuple[list[dict], list[dict]]:
    """Train rows (prompt/completion messages) and the fixed held-out sample, as docpipe reads them."""
    from docpipe.layout import DatasetLayout
    from trainers import data

    rows = data.load(DatasetLayout(args.dataset), args.dataset.parent, with_dpo=False)
    return rows.train, data.sample(rows.eval, args.eval_pairs, args.seed)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def run_docpipe(args, train: list[dict], adapter: Path) -> dict:
    """docpipe's hf backend as `docpipe train` calls it, with no held-out rows: no evaluation or
    best-adapter selection during the timing, so the adapter saved is the final one."""
    import shutil

    import torch

    from docpipe.config import TrainConfig
    from docpipe.layout import StageWorkLayout
    from docpipe.runtime.pretrained import resolve
    from trainers.backend import TrainJob
    from trainers.hf_backend import BACKEND

    opts = TrainConfig(
        max_steps=args.steps, batch_size=args.batch_size, threads=args.threads, seed=args.seed, checkpoint_minutes=1e6, evals_per_epoch=1
    )
    base = resolve(str(args.base_model), args.cache)
    job = TrainJob("sft", base, train, [], StageWorkLayout(args.work / "docpipe"), opts, 1, "cpu", args.threads)
    result = BACKEND.sft(job)
    shutil.copytree(result.adapter, adapter)
    return {
        "steps": result.steps,
        "tokens": result.tokens,
        "step_seconds": result.tokens / result.tokens_per_s,
        "wall_s": result.wall_s,
        "peak_rss_mb": _peak_rss_mb(),
        "threads_seen": torch.get_num_threads(),
        "precision": {
            "bf16": False,
            "fp16": False,
            "model_dtype": "torch.float32",
            "autocast": "no",
            "gradient_checkpointing": False,
            "packing": False,
            "loss_on": "assistant tokens",
            "learning_rate": opts.learning_rate,
        },
    }


def run_plain_trl(args, train: list[dict], adapter: Path) -> dict:
    """What a user writes from the TRL docs: model by path, conversational dataset, TRL's defaults.
    Two additions: use_cpu=True, because SFTConfig's default bf16=True raises without a GPU ("Your setup
    doesn't support bf16/gpu. You need to assign use_cpu ..."), so a CPU user must add it (bf16 stays on);
    and include_num_input_tokens_seen, which only sums each batch's attention mask."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class StepTimer(TrainerCallback):
        seconds, began = 0.0, 0.0

        def on_step_begin(self, *_, **__):
            self.began = time.perf_counter()

        def on_step_end(self, *_, **__):
            self.seconds += time.perf_counter() - self.began

    torch.set_num_threads(args.threads)
    dataset = Dataset.from_list([{"messages": r["prompt"] + r["completion"]} for r in train])
    config = SFTConfig(
        output_dir=str(args.work / "plain"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        report_to="none",
        seed=args.seed,
        use_cpu=True,
        include_num_input_tokens_seen="non_padding",
    )
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=str(args.base_model), train_dataset=dataset, args=config, peft_config=lora)
    timer = StepTimer()
    trainer.add_callback(timer)
    started = time.perf_counter()
    trainer.train()
    trainer.save_model(str(adapter))
    wall = time.perf_counter() - started
    return {
        "steps": trainer.state.global_step,
        "tokens": int(trainer.state.num_input_tokens_seen),
        "step_seconds": timer.seconds,
        "wall_s": round(wall, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "threads_seen": torch.get_num_threads(),
        "precision": {
            "bf16": trainer.args.bf16,
            "fp16": trainer.args.fp16,
            "model_dtype": str(trainer.model.dtype),
            "autocast": str(trainer.accelerator.mixed_precision),
            "gradient_checkpointing": trainer.args.gradient_checkpointing,
            "packing": trainer.args.packing,
            "loss_on": "assistant tokens" if trainer.args.assistant_only_loss else "whole conversation",
            "learning_rate": trainer.args.learning_rate,
        },
    }


def held_out_loss(base_path: Path, adapter: Path | None, rows: list[dict], max_tokens: int = 1024) -> float:
    """Mean loss per assistant token over `rows`: the one yardstick for both contenders (fp32, eval mode)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    model = (PeftModel.from_pretrained(model, str(adapter)) if adapter else model).eval()  # no adapter: the base
    total, count = 0.0, 0
    with torch.inference_mode():
        for row in rows:
            prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
            full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
            assert full.startswith(prompt), "chat template renders the prompt differently inside the conversation"
            start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            ids = tokenizer(full, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :max_tokens]
            if ids.shape[1] <= start:
                continue  # the answer was truncated away, as in training
            logits = model(input_ids=ids).logits[0, start - 1 : -1]
            total += torch.nn.functional.cross_entropy(logits.float(), ids[0, start:], reduction="sum").item()
            count += ids.shape[1] - start
    return total / max(count, 1)


def contender(args) -> None:
    """Child process: train one contender, record its peak RSS, then score its adapter."""
    import torch

    torch.set_num_threads(args.threads)
    train, held_out = _rows(args)
    adapter = args.work / f"{args.contender}-adapter"
    trained = (run_docpipe if args.contender == "docpipe" else run_plain_trl)(args, train, adapter)
    trained["held_out_loss"] = held_out_loss(args.base_model, adapter, held_out)  # after the RSS reading
    (args.work / f"{args.contender}.json").write_text(json.dumps(trained))


def flops_per_token(base_path: Path, lora_rank: int = 16) -> dict:
    """Parameter counts for the FLOP conventions (see the note in the report)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(base_path))
    n = sum(p.numel() for p in model.parameters())  # unique tensors: a tied lm_head counts once
    linear = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and not name.endswith("lm_head")]
    n_lora = sum(lora_rank * (m.in_features + m.out_features) for m in linear)  # "all-linear" skips lm_head
    return {"n_params_base": n, "n_params_lora": n_lora, "flops_6n": 6 * n, "flops_4n": 4 * n + 6 * n_lora}


def _summary(child: dict, flops: dict, gflops: float) -> dict:
    tokens_per_s = child["tokens"] / child["step_seconds"]
    return {
        "tokens": child["tokens"],
        "tokens_per_s": round(tokens_per_s, 1),
        "s_per_step": round(child["step_seconds"] / child["steps"], 3),
        "wall_s_per_step": round(child["wall_s"] / child["steps"], 3),
        "steps": child["steps"],
        "peak_rss_mb": child["peak_rss_mb"],
        "held_out_loss": round(child["held_out_loss"], 4),
        "threads_seen": child["threads_seen"],
        "precision": child["precision"],
        "mfu_6n": round(flops["flops_6n"] * tokens_per_s / (gflops * 1e9), 4),
        "mfu_4n": round(flops["flops_4n"] * tokens_per_s / (gflops * 1e9), 4),
    }


def _machine(threads: int) -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "threads": threads,
        "load_avg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        **{pkg: version(pkg) for pkg in ("torch", "transformers", "trl", "peft", "datasets", "accelerate")},
    }


def _run_child(name: str, args, argv: list[str]) -> dict:
    print(f"training {name} ({args.steps} steps) ...", flush=True)
    subprocess.run([sys.executable, __file__, *argv, "--contender", name, "--work", str(args.work)], check=True)
    return json.loads((args.work / f"{name}.json").read_text())


def _inputs(args, scratch: Path) -> None:
    """Fill in the dataset and base-model folder (a tiny pair in --quick), and the thread count."""
    from docpipe.runtime import hardware
    from docpipe.runtime.pretrained import resolve

    if args.quick:
        from tests.trainers.tiny_model import build_tiny_model, tiny_dataset

        args.base_model, args.dataset = build_tiny_model(scratch / "model"), tiny_dataset(scratch / "dataset")
        args.steps = 3
    else:
        args.dataset = args.dataset or corpus_dataset(args.cache / "corpus-out")
        args.base_model = resolve(args.base_model, args.cache).path  # converts the packaged GGUF once, cached
    args.threads = args.threads or hardware.choose_threads(None, hardware.probe())


def corpus_dataset(out: Path) -> Path:
    """The dataset a user gets from ../shared/corpus with no model (`generate --model none`), made once."""
    from docpipe.config import load_config
    from docpipe.ingest import pipeline as ingest
    from docpipe.layout import Layout
    from docpipe.qa import generate
    from docpipe.stage import GenerateInputs, IngestInputs

    layout = Layout(out)
    if not layout.dataset.train.is_file():
        cfg = load_config(overrides={"llm.model": "none"})
        print(f"making the dataset from {CORPUS} (ingest + generate --model none, once) ...", flush=True)
        ingest.run(IngestInputs(CORPUS, layout), cfg.ingest)
        generate.run(GenerateInputs(layout, cfg.llm, client=None), cfg.generate)
    return layout.dataset.root


def report(args, children: dict, gflops: float) -> dict:
    flops = flops_per_token(args.base_model)
    ours, plain = (_summary(children[name], flops, gflops) for name in ("docpipe", "plain_trl"))
    speedup = ours["tokens_per_s"] / plain["tokens_per_s"]
    return {
        "machine": _machine(args.threads),
        "settings": {
            "base_model": str(args.base_model),
            "dataset": str(args.dataset),
            "steps": args.steps,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "eval_pairs": args.eval_pairs,
            "seed": args.seed,
            "quick": args.quick,
        },
        "matmul_gflops": round(gflops, 1),
        "matmul_shape_mkn": list(MATMUL),
        "flops_per_token": flops
        | {
            "note": (
                "N = every parameter of the base model once (a tied lm_head shares the embedding: counted once, as the "
                "output matmul; the input embedding is a lookup). Attention-score FLOPs and gradient-checkpointing "
                "recomputation are not counted. mfu_6n: the usual 6N (forward 2N, backward 4N). mfu_4n: LoRA-aware, "
                "4N for the frozen weights (forward + input gradient, no weight gradient) plus 6N for the LoRA weights "
                "(r=16 on all linear layers). The target is judged on mfu_6n, the usual meaning of MFU."
            )
        },
        "docpipe": ours,
        "plain_trl": plain,
        "speedup": round(speedup, 3),
        "loss_delta": round(ours["held_out_loss"] - plain["held_out_loss"], 4),
        "targets_met": {
            "speedup_ge_1_5": speedup >= TARGETS["speedup"],
            "held_out_loss_le_plain": ours["held_out_loss"] <= plain["held_out_loss"],
            "mfu_6n_ge_0_6": ours["mfu_6n"] >= TARGETS["mfu"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dataset", type=Path, help="A `docpipe generate` dataset/ folder (default: made from ../shared/corpus with --model none)."
    )
    parser.add_argument("--base-model", default="smollm2-135m-instruct")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench-results" / ".cache")
    parser.add_argument("--steps", type=int, default=20, help="Optimiser steps per contender.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, help="Torch threads for both (default: the cores not busy).")
    parser.add_argument("--eval-pairs", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="Default bench-results/train.json (train-quick.json with --quick).")
    parser.add_argument("--quick", action="store_true", help="Tiny random model, 3 steps: a smoke test.")
    parser.add_argument("--contender", choices=["docpipe", "plain_trl"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.contender:
        return contender(args)

    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        args.work = Path(scratch)
        _inputs(args, args.work)
        gflops = matmul_gflops(args.threads)
        print(f"fp32 matmul {MATMUL}: {gflops:.1f} GFLOP/s with {args.threads} thread(s)", flush=True)
        argv = [
            "--base-model",
            str(args.base_model),
            "--dataset",
            str(args.dataset),
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--threads",
            str(args.threads),
            "--eval-pairs",
            str(args.eval_pairs),
            "--seed",
            str(args.seed),
            "--cache",
            str(args.cache),
        ]
        children = {name: _run_child(name, args, argv) for name in ("docpipe", "plain_trl")}
        result = report(args, children, gflops)
    args.out = args.out or ROOT / "bench-results" / ("train-quick.json" if args.quick else "train.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ours, plain = result["docpipe"], result["plain_trl"]
    print(
        f"\ndocpipe {ours['tokens_per_s']} tok/s vs plain TRL {plain['tokens_per_s']} tok/s: {result['speedup']}x; "
        f"held-out loss {ours['held_out_loss']} vs {plain['held_out_loss']}; MFU(6N) {ours['mfu_6n']:.1%} "
        f"of {result['matmul_gflops']} GFLOP/s; targets met: {result['targets_met']}"
    )


if __name__ == "__main__":
    main()
