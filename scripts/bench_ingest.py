#!/usr/bin/env python
"""Benchmark ingestion in one run on one corpus: docpipe (cold, then warm) against the loops a
user would otherwise write: plain sequential unstructured `partition`, and kreuzberg alone.

    .venv/bin/python scripts/bench_ingest.py [--corpus ../shared/corpus] [--out bench-results/ingest.json]

Writes JSON: files/s, MB/s, peak RSS of each process tree, characters and word recall per
file for each method. Word recall of a method on a file = share of the words found by any
of the three methods that this method found.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
_WORD = re.compile(r"\w{2,}", re.UNICODE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "ingest.json")
    parser.add_argument("--timeout", type=float, default=300, help="per-file limit for the baseline loops (s)")
    parser.add_argument(
        "--baseline-python",
        type=Path,
        default=Path(sys.executable),
        help="interpreter for the baseline loops: one with unstructured's pdf/image extras, which docpipe does not install",
    )
    parser.add_argument("--baseline", choices=["unstructured", "kreuzberg"], help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        return _baseline_loop(args.baseline, json.loads(args.files.read_text()), args.result, args.timeout)
    _bench(args.corpus.resolve(), args.out, args.timeout, args.baseline_python)


def _bench(corpus: Path, out: Path, timeout: float, baseline_python: Path) -> None:
    from docpipe.ingest.discover import discover

    files = [f for f in discover(corpus) if f.skip_reason is None]
    total_bytes = sum(f.size for f in files)
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    listing = work / "files.json"
    listing.write_text(json.dumps([[f.rel, str(f.path)] for f in files]))
    methods, texts = {}, {}
    for name in ("unstructured", "kreuzberg"):
        result = work / f"{name}.json"
        cmd = [
            str(baseline_python),
            __file__,
            "--baseline",
            name,
            "--files",
            str(listing),
            "--result",
            str(result),
            "--timeout",
            str(timeout),
        ]
        seconds, peak = _measure(cmd)
        per_file = json.loads(result.read_text())
        texts[name] = {rel: r["text"] for rel, r in per_file.items()}
        methods[f"{name}_loop"] = _summary(seconds, peak, len(files), total_bytes, per_file)
        print(f"{name} loop: {seconds:.1f} s", file=sys.stderr)
    ingest = [sys.executable, "-m", "docpipe", "ingest", str(corpus), "--out", str(work / "docpipe-out")]
    cold, cold_peak = _measure(ingest)
    warm, warm_peak = _measure(ingest)
    docs = {d["path"]: d for d in map(json.loads, (work / "docpipe-out" / "documents.jsonl").read_text().splitlines())}
    texts["docpipe"] = {rel: docs[rel]["text"] for rel in docs}
    per_docpipe = {
        rel: {"text": d["text"], "seconds": d["seconds"], "error": d["reason"] if d["status"] == "failed" else None}
        for rel, d in docs.items()
    }
    methods["docpipe_cold"] = _summary(cold, cold_peak, len(files), total_bytes, per_docpipe)
    methods["docpipe_warm"] = {"seconds": round(warm, 2), "peak_rss_mb": warm_peak, "share_of_cold": round(warm / cold, 4)}
    per_file, recall = _recall(files, docs, texts)
    for method, values in recall.items():
        key = f"{method}_loop" if method != "docpipe" else "docpipe_cold"
        methods[key]["mean_word_recall"] = round(sum(values) / len(values), 4)
    report = {
        "corpus": str(corpus),
        "files": len(files),
        "megabytes": round(total_bytes / 2**20, 2),
        "machine": {"cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "baseline_python": str(baseline_python),
        "baseline_has_unstructured_pdf_extra": _has_module(baseline_python, "unstructured_inference"),
        "methods": methods,
        "speedup_vs_unstructured_loop": round(methods["unstructured_loop"]["seconds"] / cold, 2),
        "files_where_docpipe_recall_is_below_the_best_single_engine": [
            p["path"] for p in per_file if p["recall"]["docpipe"] + 0.02 < max(p["recall"]["unstructured"], p["recall"]["kreuzberg"])
        ],
        "per_file": per_file,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in report.items() if k != "per_file"}, indent=2))


def _measure(cmd: list[str]) -> tuple[float, float]:
    """Wall time and peak RSS (MB) of the whole process tree, sampled every 0.1 s."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.1):
            try:
                root = psutil.Process(proc.pid)
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = proc.wait()
    done.set()
    thread.join()
    if code != 0:
        raise SystemExit(f"benchmark step failed ({code}): {' '.join(cmd)}")
    return time.monotonic() - started, round(peak / 2**20, 1)


def _summary(seconds: float, peak_mb: float, files: int, total_bytes: int, per_file: dict) -> dict:
    return {
        "seconds": round(seconds, 2),
        "files_per_s": round(files / seconds, 3),
        "mb_per_s": round(total_bytes / 2**20 / seconds, 3),
        "peak_rss_mb": peak_mb,
        "files_with_text": sum(1 for r in per_file.values() if len(r["text"].strip()) >= 16),
        "files_with_errors": sum(1 for r in per_file.values() if r.get("error")),
    }


def _recall(files, docs: dict, texts: dict[str, dict[str, str]]) -> tuple[list[dict], dict[str, list[float]]]:
    per_file, recall = [], {m: [] for m in texts}
    for f in files:
        words = {m: set(_WORD.findall(texts[m].get(f.rel, "").lower())) for m in texts}
        union = set().union(*words.values())
        if not union:
            continue
        row = {m: round(len(w & union) / len(union), 4) for m, w in words.items()}
        for m, value in row.items():
            recall[m].append(value)
        per_file.append(
            {
                "path": f.rel,
                "format": docs.get(f.rel, {}).get("format"),
                "engine": docs.get(f.rel, {}).get("engine"),
                "chars": {m: len(texts[m].get(f.rel, "")) for m in texts},
                "recall": row,
            }
        )
    return per_file, recall


def _baseline_loop(engine: str, files: list[list[str]], result: Path, timeout: float) -> None:
    """The loop a user would write, one file after another in one process."""
    extract = _unstructured_extract() if engine == "unstructured" else _kreuzberg_extract()

    def over_time(*_):
        raise TimeoutError(f"over {timeout:g} s")

    signal.signal(signal.SIGALRM, over_time)
    out = {}
    for rel, path in files:
        started, text, error = time.monotonic(), "", None
        signal.alarm(int(timeout))
        try:
            text = extract(path)
        except BaseException as exc:  # kreuzberg panics are BaseExceptions; a baseline must finish
            if isinstance(exc, KeyboardInterrupt):
                raise
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            signal.alarm(0)
        out[rel] = {"text": text, "seconds": round(time.monotonic() - started, 3), "error": error}
    result.write_text(json.dumps(out, ensure_ascii=False))


def _has_module(python: Path, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(python), "-c", code]).returncode == 0


_IMAGES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".heic", ".gif", ".webp"}


def _unstructured_extract():
    """Plain `partition`, set up as a user must to run it offline: hubs off, the registry copy of
    its spaCy model (else it downloads one from GitHub), and no hi_res (its layout models come
    from a hub): `fast` for PDFs, `ocr_only` when that finds under 50 characters, and for images."""
    os.environ.update(HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", SCARF_NO_ANALYTICS="1")
    from unstructured.partition.auto import partition

    from docpipe.ingest.engines.unstructured_engine import use_installed_spacy_model

    use_installed_spacy_model()

    def extract(path: str) -> str:
        suffix = Path(path).suffix.lower()
        strategy = "ocr_only" if suffix in _IMAGES else "fast" if suffix == ".pdf" else None
        options = {"strategy": strategy} if strategy else {}
        text = "\n\n".join(str(el) for el in partition(filename=path, **options))
        if suffix == ".pdf" and len(text.strip()) < 50:
            text = "\n\n".join(str(el) for el in partition(filename=path, strategy="ocr_only"))
        return text

    return extract


def _kreuzberg_extract():
    from kreuzberg import extract_file_sync

    return lambda path: extract_file_sync(path).content


if __name__ == "__main__":
    main()
