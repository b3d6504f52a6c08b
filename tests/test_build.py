"""`docpipe build` end to end, offline, through the real command: a small corpus and a tiny model go from
documents to an exported, parity-checked GGUF with a journal; the same command again reuses everything; a
kill -9 at any stage and the same command continues; and the whole build runs with no network at all."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.trainers.tiny_model import build_tiny_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    docs = root / "docs"
    docs.mkdir()
    (docs / "pumps.md").write_text(
        "# Pumps\n\nPump A runs at 12 litres per minute. Pump B runs at 30 litres per minute.\n\n"
        "## Maintenance\n\nThe filter of pump A is changed every 90 days. The seals of pump B are checked every March.\n"
    )
    (docs / "history.txt").write_text(
        "The plant opened in 1987. It was extended in 2004 with a second hall. The second hall holds the packing line.\n"
    )
    base = build_tiny_model(root / "base")
    config = root / "build.yaml"
    config.write_text(
        "ingest: {workers: 1}\n"
        "generate: {paraphrase_probes: 20, abstention_probes: 10}\n"
        f"train: {{base_model: {base}, batch_size: 4, max_steps: 2, threads: 1, checkpoint_minutes: 0}}\n"
        "eval: {seen_questions: 4, max_questions_per_set: 8, max_answer_tokens: 16, threads: 1, bootstrap_samples: 200}\n"
        "export: {quantizations: [f16], modelfile_quantization: f16, threads: 1, parity_chats: 2, parity_max_tokens: 16}\n"
    )
    return docs, config


def command(docs: Path, out: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "docpipe", "build", str(docs), "--out", str(out), "--config", str(config), "--model", "none", *extra]


def build(docs, out, config, *extra, prefix=()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *command(docs, out, config, *extra)], capture_output=True, text=True, timeout=900)


def _mlflow():
    try:
        import mlflow
    except ImportError:
        return None
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow


def snapshot(out: Path) -> dict[str, float]:
    """Every file the build keeps, with its modification time (the caches and stamps aside)."""
    return {str(p.relative_to(out)): p.stat().st_mtime for p in out.rglob("*") if p.is_file() and "cache" not in p.parts}


def test_build_makes_an_exported_model_with_a_journal_and_a_second_run_reuses_everything(setup, tmp_path):
    docs, config = setup
    out = tmp_path / "out"
    first = build(docs, out, config, "--max-steps", "2", "--track", "mlflow")
    assert first.returncode == 0, first.stdout + first.stderr
    shown = first.stdout + first.stderr
    assert "ollama create" in shown and "journal" in shown
    steps = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    assert steps[0]["outcome"] == "baseline" and steps[0]["run"]
    ran = [s for s in steps if s["outcome"] != "refused"]
    assert len(ran) == 2 and ran[1]["move"] and ran[1]["outcome"] in ("kept", "reverted", "failed")
    best = (out / "best").read_text().strip()
    assert best in {s["run"] for s in ran}
    exported = json.loads((out / "export" / "export_result.json").read_text())
    assert exported["passed"] and exported["run_id"] == best and (out / "export" / "Modelfile").is_file()
    assert (out / "runs" / best / "eval.json").is_file() and "| 0 |" in (out / "journal.md").read_text()
    assert json.loads((out / "profile.json").read_text())["profile"]["documents"] == 2

    if (mlflow := _mlflow()) is not None:  # each step an MLflow run, the exported one the champion
        client = mlflow.MlflowClient(tracking_uri=(out / "mlruns").as_uri())
        runs = client.search_runs([client.get_experiment_by_name("docpipe-out").experiment_id])
        assert len(runs) == len(steps)
        champion = client.get_model_version_by_alias("docpipe-out", "champion").run_id
        assert next(r for r in runs if r.info.run_id == champion).data.tags["docpipe.run"] == best

    before = snapshot(out)
    again = build(docs, out, config, "--max-steps", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(out) == before  # nothing redone: no stage ran, no file rewritten
    listed = subprocess.run(
        [sys.executable, "-m", "docpipe", "runs", "--out", str(out)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert f"{best} (best)" in listed.stdout + listed.stderr and "step 0: baseline" in listed.stdout + listed.stderr
    status = subprocess.run([sys.executable, "-m", "docpipe", "status", "--out", str(out)], capture_output=True, text=True)
    shown = status.stdout + status.stderr
    assert status.returncode == 0 and "build: 2 steps" in shown and f"(run {best}," in shown and "journal.md" in shown


@pytest.mark.parametrize(
    "stage, marker",
    [
        ("ingest", "documents.jsonl"),
        ("generate", "dataset/train.jsonl"),
        ("train", "runs/*/train_config.json"),
        ("evaluate", "cache/eval_gguf/*"),
        ("export", "export"),
    ],
)
def test_kill_9_at_any_stage_and_the_same_command_continues(setup, tmp_path, stage, marker):
    docs, config = setup
    out = tmp_path / "out"
    proc = subprocess.Popen(
        command(docs, out, config, "--max-steps", "1"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 600
    while not list(out.glob(marker)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"the build ended before {stage} could be killed: {proc.stderr.read().decode()[-500:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if stage == "export":  # what a kill -9 in the middle of writing a GGUF leaves (the tiny model's is written too fast to catch)
        (out / "export" / ".out.f16.gguf.k3j2.partial").write_bytes(b"\0" * 4096)
    again = build(docs, out, config, "--max-steps", "1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not list(out.rglob(".*.partial"))  # a killed writer's temp files are removed on the next start
    steps = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]
    assert [s["outcome"] for s in steps] == ["baseline"]  # the killed step was finished once, not journaled twice


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_the_whole_build_runs_with_no_network_at_all(setup, tmp_path):
    docs, config = setup
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow a network namespace (unshare -rn)")
    # A network namespace with only a loopback that is down: native parsers and libraries that reach out fail too.
    result = build(docs, tmp_path / "out", config, "--max-steps", "1", prefix=("unshare", "-rn"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "out" / "export" / "export_result.json").read_text())["passed"]


def test_the_packaged_base_builds_a_model_of_the_example_corpus(tmp_path):
    """The default path a user takes, shortened: the packaged SmolLM2 and the default generator on ./examples/docs,
    with few training steps and questions so that CI affords it (the full build is measured in the README)."""
    config = tmp_path / "short.yaml"
    config.write_text(
        "train: {max_steps: 6, checkpoint_minutes: 0}\n"
        "eval: {seen_questions: 4, max_questions_per_set: 8, max_answer_tokens: 48, bootstrap_samples: 200}\n"
        "export: {quantizations: [f16], modelfile_quantization: f16, parity_chats: 2, parity_max_tokens: 16}\n"
    )
    out = tmp_path / "out"
    examples = Path(__file__).resolve().parent.parent / "examples" / "docs"
    result = subprocess.run(
        [sys.executable, "-m", "docpipe", "build", str(examples), "--out", str(out), "--config", str(config), "--max-steps", "1"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    profile = json.loads((out / "profile.json").read_text())["profile"]
    assert profile["documents"] == 7 and profile["failed"] == 0  # every format of the example corpus is read
    run = (out / "best").read_text().strip()
    report = json.loads((out / "runs" / run / "eval.json").read_text())
    assert {"base", "tuned"} <= set(report["sets"]) and report["verdict"]
    assert (out / "runs" / run / "report.html").is_file() and (out / "journal.md").is_file()
    exported = json.loads((out / "export" / "export_result.json").read_text())
    assert exported["passed"] and "ollama create" in result.stdout + result.stderr
