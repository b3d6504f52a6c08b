#!/usr/bin/env bash
# One-shot CUDA check of docpipe's GPU paths, run from the repository root on a CUDA machine with
# torch (the workplace's device machine: python3 3.12, torch 2.11 cu130, transformers 5.17, no network).
#
# Needs, beside the working tree (both ignored, so carried: carry=[".whl", ".device"]):
#   .whl/                  the `cuda` extra's packages the machine lacks, as wheels (installed to $SITE, not over torch)
#   .device/tiny-llama/    a small HF model folder (`--base-model`): SmolLM2's tokenizer and chat template
#   .device/out/           a prepared output folder: documents.jsonl, chunks.jsonl, dataset/ (no ingest needed)
#
# Steps, each under `timeout`, each going on to the next on failure (its exit code is recorded):
#   install   the wheels, with --no-deps, into $SITE; docpipe itself runs from this tree (PYTHONPATH)
#   env       nvidia-smi; torch/unsloth/bitsandbytes/trl/peft/... versions; what `--backend auto` picks here
#   lora      docpipe train --backend unsloth (LoRA)
#   qlora     docpipe train --backend unsloth --qlora (4-bit base via bitsandbytes)
#   eval      docpipe eval --engine transformers of each run (note: that engine answers on the CPU;
#             docpipe eval has no device option)
#   gpu_gen   the LoRA run's base + adapter (docpipe.runtime.merge.load_trained) on the GPU: logits vs CPU, greedy answer
#   diag_0/1  only when a train step did not end on unsloth without fallbacks: unsloth's load + LoRA + one step, bare,
#             for the traceback that docpipe's fallback reduces to one line
#   speed     a SmolLM2-135M-shaped model (random weights) trained 40 steps by unsloth and by hf on the GPU: tokens/s
# $OUT gets 8 files: summary.txt, env.log, lora.log, qlora.log, eval.log, speed.log, eval.json (the first
# evaluated run's), runs.tar.gz (every run's json/md files, adapters' configs, no weights).
#
# Local control-flow test without a GPU (train falls to hf on CPU, the GPU steps fail as they should):
#   PY=.venv/bin/python INSTALL=0 BACKEND=hf MAX_STEPS=3 OUT=/tmp/cc-out bash scripts/cuda/check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PY:-python3}
SITE=${SITE:-/tmp/site}
WORK=${WORK:-/tmp/out}
OUT=${OUT:-/tmp/cuda_check_out}
INSTALL=${INSTALL:-1}
BACKEND=${BACKEND:-unsloth}
MAX_STEPS=${MAX_STEPS:-30}
BUDGET_S=${BUDGET_S:-460}  # the whole script ends by then: each step's timeout is cut to what is left
BASE="$PWD/.device/tiny-llama"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1 UNSLOTH_COMPILE_LOCATION=/tmp/unsloth_compiled_cache
START=$SECONDS
SUMMARY=()

# step NAME LIMIT_S LOG CMD...: run CMD under timeout, output to stdout and appended to $OUT/LOG.
step() {
    local name=$1 limit=$2 log=$3 rc t0 left
    shift 3
    left=$((BUDGET_S - (SECONDS - START)))
    if ((limit > left)); then limit=$left; fi
    if ((limit < 10)); then
        SUMMARY+=("$(printf '%-8s skipped (time budget spent)' "$name")")
        echo "=== $name: skipped, $left s of the budget left" | tee -a "$OUT/$log"
        return 0
    fi
    echo "=== $name (timeout ${limit}s): $*" | tee -a "$OUT/$log"
    t0=$SECONDS
    set +e
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
    rc=${PIPESTATUS[0]}
    set -e
    if ((rc == 124 || rc == 137)); then echo "=== $name: TIMED OUT after ${limit}s" | tee -a "$OUT/$log"; fi
    SUMMARY+=("$(printf '%-8s rc=%-3s %4ss' "$name" "$rc" "$((SECONDS - t0))")")
    echo "=== $name: rc=$rc in $((SECONDS - t0)) s" | tee -a "$OUT/$log"
}

# The run folder a train step wrote: the one train_result.json not there before it.
new_run() {
    local before=$1 f
    for f in "$WORK"/runs/*/train_result.json; do
        if [[ ! -f $f ]]; then continue; fi
        if ! grep -qxF "$f" <<<"$before"; then dirname "$f"; return 0; fi
    done
    return 0
}
results() { ls "$WORK"/runs/*/train_result.json 2>/dev/null || true; }

# 1. install
if [[ $INSTALL == 1 ]]; then
    step install 120 env.log "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE:$PWD"
else
    export PYTHONPATH="${SITE}:$PWD"
fi

# 2. the machine and the versions
step nvsmi 30 env.log nvidia-smi
step env 90 env.log "$PY" - <<'PY'
import importlib, importlib.metadata as md, sys
print("python", sys.version.split()[0], sys.executable)
for name in ("torch", "triton", "transformers", "accelerate", "peft", "trl", "datasets", "bitsandbytes", "unsloth", "unsloth_zoo",
             "torchao", "xformers", "cut_cross_entropy", "pydantic", "typer", "fsspec", "pyarrow", "numpy", "safetensors", "gguf"):
    try:
        where = md.distribution(name).locate_file("")
        print(f"{name:18} {md.version(name):24} {where}")
    except md.PackageNotFoundError:
        print(f"{name:18} NOT INSTALLED")
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0), "bf16", torch.cuda.is_bf16_supported())
for mod in ("bitsandbytes", "torchao", "trl", "peft", "datasets", "docpipe.cli"):
    try:
        m = importlib.import_module(mod)
        print(f"import {mod}: ok {getattr(m, '__version__', '')}")
    except Exception as exc:  # noqa: BLE001
        print(f"import {mod}: FAILED {type(exc).__name__}: {exc}")
from docpipe.runtime import hardware
from trainers import dispatch
hw = hardware.probe()
print("hardware", hw)
print("--backend auto picks:", dispatch.choose("auto", "auto", hw))
PY

# 3. train and evaluate
rm -rf "$WORK" && cp -r .device/out "$WORK"
# docpipe falls back from unsloth to hf (GPU, then CPU) and records only one line of why: when a run did
# not train on unsloth without fallbacks, the same unsloth load + LoRA + one step is run bare for the traceback.
unsloth_ok() {
    [[ -n $1 ]] && "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1] + "/train_result.json")); sys.exit(r["backend"] != "unsloth" or bool(r["fallbacks"]))' "$1"
}
diagnose() {  # diagnose LOG QLORA(0|1)
    step "diag_$2" 120 "$1" "$PY" - "$BASE" "$2" <<'PY'
import sys
from docpipe.runtime import offline
offline.apply()
import unsloth  # noqa: F401 - first, as trainers/unsloth_backend.py does
from unsloth import FastLanguageModel
base, qlora = sys.argv[1], sys.argv[2] == "1"
model, tok = FastLanguageModel.from_pretrained(model_name=base, max_seq_length=1024, dtype=None, load_in_4bit=qlora, local_files_only=True)
print("loaded", type(model).__name__, model.dtype, "4-bit" if qlora else "")
model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=32, lora_dropout=0.0, bias="none", target_modules="all-linear",
                                         use_gradient_checkpointing="unsloth", random_state=0)
FastLanguageModel.for_training(model)
ids = tok("Pump A runs at 12 litres per minute.", return_tensors="pt").input_ids.cuda()
out = model(input_ids=ids, labels=ids)
out.loss.backward()
print("one LoRA step's loss", out.loss.item())
PY
}

before=$(results)
step lora 180 lora.log "$PY" -m docpipe train --out "$WORK" --base-model "$BASE" --backend "$BACKEND" --max-steps "$MAX_STEPS"
LORA_RUN=$(new_run "$before")
if [[ $BACKEND == unsloth ]] && ! unsloth_ok "$LORA_RUN"; then diagnose lora.log 0; fi
before=$(results)
step qlora 150 qlora.log "$PY" -m docpipe train --out "$WORK" --base-model "$BASE" --backend "$BACKEND" --max-steps "$MAX_STEPS" --qlora
QLORA_RUN=$(new_run "$before")
if [[ $BACKEND == unsloth ]] && ! unsloth_ok "$QLORA_RUN"; then diagnose qlora.log 1; fi
echo "runs: lora=${LORA_RUN:-none} qlora=${QLORA_RUN:-none}"

cat >/tmp/cuda_check_eval.yaml <<'EOF'
eval:
  engine: transformers
  seen_questions: 10
  max_questions_per_set: 20
  max_answer_tokens: 32
  bootstrap_samples: 200
EOF
for run in "$LORA_RUN" "$QLORA_RUN"; do
    if [[ -z $run ]]; then continue; fi
    label=eval_lora
    if [[ $run == "$QLORA_RUN" ]]; then label=eval_qlora; fi
    step "$label" 120 eval.log "$PY" -m docpipe eval --out "$WORK" --config /tmp/cuda_check_eval.yaml --run "$(basename "$run")"
done

if [[ -n $LORA_RUN ]]; then
    step gpu_gen 90 eval.log "$PY" - "$BASE" "$LORA_RUN/adapter" <<'PY'
import sys, time
from pathlib import Path
import torch
from docpipe.runtime.merge import load_trained

base, adapter = Path(sys.argv[1]), Path(sys.argv[2])
model, tok = load_trained(base, adapter)  # float32, as docpipe eval and export load it
prompt = [{"role": "user", "content": "How often is the filter of pump A changed?"}]
ids = torch.tensor([list(tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=False))])
with torch.inference_mode():
    cpu = model(ids).logits.float()
    model = model.to("cuda")
    gpu = model(ids.cuda()).logits.float().cpu()
    print(f"logits cpu vs cuda (float32): max abs diff {(cpu - gpu).abs().max().item():.3e}, same argmax "
          f"{(cpu.argmax(-1) == gpu.argmax(-1)).float().mean().item():.3f}")
    torch.cuda.synchronize(); t0 = time.perf_counter()
    out = model.generate(input_ids=ids.cuda(), attention_mask=torch.ones_like(ids).cuda(), max_new_tokens=32, do_sample=False,
                         pad_token_id=tok.pad_token_id or tok.eos_token_id)
    torch.cuda.synchronize()
    print(f"greedy 32 tokens on cuda in {time.perf_counter() - t0:.2f} s: {tok.decode(out[0, ids.shape[1]:])!r}")
print("peak cuda memory MB", round(torch.cuda.max_memory_allocated() / 2**20, 1))
PY
fi

# speed: a SmolLM2-135M-shaped model (random weights: speed does not depend on them) trained by unsloth and by hf on
# the GPU, for trainers/exposures.py's tokens/s table (the tiny model above says nothing about speed)
SHAPE=/tmp/smol-shape
step shape 60 speed.log "$PY" - "$BASE" "$SHAPE" <<'PY'
import shutil, sys
from pathlib import Path
import torch
from transformers import LlamaConfig, LlamaForCausalLM

base, target = Path(sys.argv[1]), Path(sys.argv[2])
config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                     num_key_value_heads=3, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True,
                     bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
torch.manual_seed(0)
LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(target)
for f in base.iterdir():
    if f.name.startswith(("tokenizer", "special_tokens", "chat_template", "generation_config")):
        shutil.copy(f, target / f.name)
print("SmolLM2-135M-shaped model at", target, sum(p.numel() for p in LlamaForCausalLM(config).parameters()) / 1e6, "M parameters")
PY
before=$(results)
step speed_unsloth 120 speed.log "$PY" -m docpipe train --out "$WORK" --base-model "$SHAPE" --backend unsloth --max-steps 40
SPEED_U=$(new_run "$before")
before=$(results)
step speed_hf 120 speed.log "$PY" -m docpipe train --out "$WORK" --base-model "$SHAPE" --backend hf --device cuda --max-steps 40
SPEED_H=$(new_run "$before")

# 4. what comes back, and the summary
for run in "$LORA_RUN" "$QLORA_RUN"; do
    if [[ -n $run && -f $run/eval.json ]]; then cp "$run/eval.json" "$OUT/" || true; break; fi
done
tar -czf "$OUT/runs.tar.gz" -C "$WORK" --exclude='*.safetensors' --exclude='checkpoints' --exclude='*.bin' --exclude='*.pt' \
    $(cd "$WORK" && ls -d runs logs 2>/dev/null) 2>/dev/null || true
{
    echo "cuda_check: $((SECONDS - START)) s in all; backend=$BACKEND max_steps=$MAX_STEPS"
    printf '%s\n' "${SUMMARY[@]}"
    "$PY" - "$LORA_RUN" "$QLORA_RUN" "${SPEED_U:-}" "${SPEED_H:-}" <<'PY' || true
import json, sys
from pathlib import Path
for label, run in zip(("lora", "qlora", "speed_unsloth", "speed_hf"), sys.argv[1:]):
    if not run:
        print(f"{label}: no run written")
        continue
    r = json.loads((Path(run) / "train_result.json").read_text())
    s = r.get("sft") or {}
    qlora = (r.get("config") or {}).get("qlora")
    last = lambda key: (s.get(key) or [{}])[-1].get("loss")
    print(f"{label}: run {r.get('run_id')} backend={r.get('backend')} ({s.get('backend')}) device={r.get('device')} qlora={qlora}")
    print(f"  dispatch: {r.get('dispatch')}; fallbacks: {r.get('fallbacks') or 'none'}")
    print(f"  steps={s.get('steps')} train_loss={last('train_loss')} eval_loss={last('eval_loss')} tokens/s={s.get('tokens_per_s')} "
          f"peak_mb={r.get('peak_memory_mb')} wall_s={r.get('wall_s')}")
    e = Path(run) / "eval.json"
    if e.is_file():
        e = json.loads(e.read_text())
        print(f"  eval: verdict={e.get('verdict')} engine={e.get('engine')} seconds={e.get('seconds')}")
PY
} 2>&1 | tee "$OUT/summary.txt"
ls -la "$OUT"
