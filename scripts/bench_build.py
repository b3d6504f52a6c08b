#!/usr/bin/env python
"""`docpipe build` against what a user would otherwise run: the stages one by one with the defaults, in one run,
on the same corpus and machine. Each side is timed per stage (wall, peak RSS of the stage's process) and its
model judged by its own `docpipe eval` report (tuned vs base on questions in new words, with intervals).

    .venv/bin/python scripts/bench_build.py [--corpus examples/docs] [--budget-minutes 30]
        [--work /tmp/bench-build] [--out bench-results/build.json]

The two sides do not ask the same number of questions: `docpipe eval` asks its full sets, each build step a
smaller sample (so that several steps fit the budget); the intervals say how far each figure can be trusted.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOCPIPE = [sys.executable, "-m", "docpipe"]


def timed(args: list[str], logs: Path) -> dict:
    """Run one docpipe command: its wall time and the peak RSS of its process tree (sampled every 0.5 s)."""
    import psutil

    log = logs / f"{args[0]}.log"  # a file, not a pipe: a full pipe would stall the command
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen([*DOCPIPE, *args], stdout=sink, stderr=subprocess.STDOUT)
        tree, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                peak = max(peak, sum(p.memory_info().rss for p in [tree, *tree.children(recursive=True)]))
            except psutil.Error:  # a process ended while it was being read
                pass
            time.sleep(0.5)
    if proc.returncode != 0:
        raise SystemExit(f"docpipe {' '.join(args)} failed (exit {proc.returncode}); its output: {log}")
    return {"wall_s": round(time.monotonic() - started, 1), "peak_rss_mb": round(peak / 2**20)}


def figures(run_folder: Path) -> dict:
    from docpipe.build.task import headline, headline_figures
    from docpipe.contracts import EvalReport

    report = EvalReport.model_validate_json((run_folder / "eval.json").read_text(encoding="utf-8"))
    found = headline_figures(report)
    return {"headline": headline(report, found), **found, "questions": {s: e.f1.n for s, e in report.sets.get("tuned", {}).items()}}


def stages_one_by_one(corpus: Path, out: Path) -> dict:
    rows = {}
    for stage, args in [
        ("ingest", ["ingest", str(corpus)]),
        ("generate", ["generate"]),
        ("train", ["train"]),
        ("eval", ["eval"]),
        ("export", ["export"]),
    ]:
        rows[stage] = timed([*args, "--out", str(out)], out.parent)
        print(f"stages: {stage} {rows[stage]['wall_s']} s", flush=True)
    run = next(p for p in (out / "runs").iterdir() if (p / "eval.json").is_file())
    return {"stages": rows, "wall_s": round(sum(r["wall_s"] for r in rows.values()), 1), **figures(run)}


def build(corpus: Path, out: Path, budget: float) -> dict:
    whole = timed(["build", str(corpus), "--out", str(out), "--budget-minutes", f"{budget:g}"], out.parent)
    steps = [json.loads(line) for line in (out / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    best = (out / "best").read_text(encoding="utf-8").strip()
    ran = [
        {
            "step": s["step"],
            "move": None if not s["move"] else f"{s['move']['action']} = {s['move']['value']}",
            "outcome": s["outcome"],
            "seconds": s["seconds"],
            "train_s": s["measures"].get("train_s"),
            "eval_s": s["measures"].get("eval_s"),
            "generate_s": (s["measures"].get("dataset") or {}).get("generate_s"),
            "decision": (s.get("decision") or {}).get("why"),
        }
        for s in steps
    ]
    export = json.loads((out / "export" / "export_result.json").read_text(encoding="utf-8"))
    return {**whole, "steps": ran, "best_run": best, "exported": export["passed"], **figures(out / "runs" / best)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "examples" / "docs")
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-build"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "build.json")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "corpus": str(args.corpus),
        "stages_one_by_one": stages_one_by_one(args.corpus, args.work / "stages"),
        "docpipe_build": build(args.corpus, args.work / "build", args.budget_minutes),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for side in ("stages_one_by_one", "docpipe_build"):
        r = result[side]
        print(f"{side}: {r['wall_s'] / 60:.1f} min; {r['headline']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
