"""kill -9 in the middle of `docpipe generate` against a real HTTP model server, then the same
command: no pair lost, and no call that had succeeded is made again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from docpipe.store import iter_jsonl, write_jsonl
from tests.llm.fake_openai_server import FakeOpenAIServer, Scripted
from tests.qa.builders import document
from tests.stages import generate_dataset

pytestmark = pytest.mark.slow
TOPICS = ["harbour", "glacier", "orchard", "foundry", "lighthouse", "vineyard", "quarry", "monastery"]
DOCS = [
    document(
        f"notes/{topic}.txt",
        [
            (f"The {topic} was built in {1800 + i * 7} by a cooperative of {i + 3} families.", None),
            (f"Visitors to the {topic} must register at the office before {i + 8} o'clock.", None),
        ],
    )
    for i, topic in enumerate(TOPICS)
]


def _reply(body: dict, number: int) -> Scripted:
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    if system.startswith("Reword"):
        return Scripted(text=json.dumps({"question": "Please tell me: " + user.lower()}))
    passage = user.split("<<<\n", 1)[1].split("\n>>>", 1)[0]
    pairs = [
        {"question": f"What does the text say about {s.split()[1]} {s.split()[2]}?", "answer": s, "quote": s}
        for s in passage.split("\n\n")
        if s.strip()
    ]
    return Scripted(text=json.dumps({"pairs": pairs}), hang_s=0.3)  # slow enough to be killed mid-run


def _command(out: Path, server: FakeOpenAIServer) -> list[str]:
    config = out / "config.yaml"
    config.write_text(
        # margin 1: the scripted model writes every chunk, whatever its trial says (its questions are crude on purpose)
        "generate:\n  chunk_tokens: 32\n  paraphrase_probes: 4\n  model_trial_margin: 1.0\nllm:\n  concurrency: 2\n  backoff_s: 0.05\n"
    )
    return [
        sys.executable,
        "-m",
        "docpipe",
        "generate",
        "--out",
        str(out),
        "--config",
        str(config),
        "--model",
        "openai/fake-model",
        "--api-base",
        server.base_url,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OPENAI_API_KEY": "sk-test-secret-0123456789"}


def _cached_prompts(out: Path) -> set[str]:
    return {json.loads(p.read_text())["messages"][1]["content"] for p in (out / "cache" / "llm").rglob("*.json")}


def _questions(out: Path) -> set[str]:
    return {r["question"] for name in ("train", "eval") for r in iter_jsonl(out / "dataset" / f"{name}.jsonl")}


def test_kill_9_then_the_same_command_loses_nothing_and_repeats_no_call(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for out in (whole, killed):
        out.mkdir()
        write_jsonl(out / "documents.jsonl", DOCS)
    with FakeOpenAIServer(_reply) as server:
        subprocess.run(_command(whole, server), env=_env(), check=True, capture_output=True, timeout=300)
    with FakeOpenAIServer(_reply) as server:
        process = subprocess.Popen(_command(killed, server), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while server.count < 6 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
        done_before = _cached_prompts(killed)
        assert done_before and not (killed / "dataset" / "train.jsonl").exists()
        first_run_requests = server.count
        result = subprocess.run(_command(killed, server), env=_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        asked_again = [r["messages"][1]["content"] for r in server.requests[first_run_requests:]]
    assert not done_before & set(asked_again)  # no successful call repeated
    assert _questions(killed) == _questions(whole)  # no pair lost
    assert len(_questions(whole)) >= len(DOCS)
    secret = "sk-test-secret-0123456789"
    assert not any(secret in p.read_text(errors="ignore") for p in killed.rglob("*") if p.is_file())


def test_a_server_that_misbehaves_then_dies_mid_run_still_gives_a_complete_dataset(tmp_path, monkeypatch):
    import threading

    from docpipe.config import DocpipeConfig
    from docpipe.llm import open_llm
    from tests.llm.fake_openai_server import rate_limited, server_error

    def flaky(body: dict, number: int) -> Scripted:
        good = _reply(body, number)
        script = {
            1: Scripted(text="```json\n" + good.text + "\n```"),
            2: rate_limited(0.2),
            3: Scripted(text="<think>hmm</think>" + good.text),
            4: Scripted(text=""),
            5: server_error(503),
            6: Scripted(text="{not json"),
            7: Scripted(text="x", hang_s=3),
        }
        return script.get(number, good)

    write_jsonl(tmp_path / "documents.jsonl", DOCS)
    cfg = DocpipeConfig.model_validate(
        {
            "generate": {
                "chunk_tokens": 32,
                "paraphrase_probes": 0,
                "model_trial_margin": 1.0,
            },  # the model writes on until the server dies
            "llm": {"model": "openai/fake-model", "timeout_s": 1, "backoff_s": 0.05, "max_retries": 2, "concurrency": 2},
        }
    )
    with FakeOpenAIServer(flaky) as server:

        def kill_server_after(n: int) -> None:  # the server dies mid-run: connections are refused from then on
            while server.count < n:
                time.sleep(0.02)
            server._server.shutdown()
            server._server.server_close()

        threading.Thread(target=kill_server_after, args=(9,), daemon=True).start()
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        llm = open_llm(cfg.llm.model_copy(update={"api_base": server.base_url}), cache_dir=tmp_path / "cache" / "llm")
        report = generate_dataset(tmp_path, cfg, llm=llm)
    agent, usage = report.llm.agent, report.llm.usage["QAWriter"]
    assert report.documents_covered == len(DOCS)  # every document still gets pairs
    assert agent.get("chunks by structured", 0) >= 1 and agent.get("chunks by heuristic", 0) >= 1
    assert usage.retries >= 3 and usage.failures >= 1
    records = [r for name in ("train", "eval") for r in iter_jsonl(tmp_path / "dataset" / f"{name}.jsonl") if r["kind"] != "refusal"]
    texts = {d.path: d.text for d in DOCS}
    assert all(texts[r["citation"]["path"]][r["citation"]["start"] : r["citation"]["end"]] == r["citation"]["quote"] for r in records)
