"""The default generator for real: the packaged SmolLM2-135M writes for the trial chunks through its real
schema and grammar, and the trial rule compares it with the extractive generator on the same chunks."""

from __future__ import annotations

import pytest

from docpipe.config import DocpipeConfig
from docpipe.llm import open_llm
from docpipe.runtime import packaged
from docpipe.store import iter_jsonl
from tests.qa.test_generate import DOCS, _out
from tests.stages import generate_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packaged_model():
    if packaged.packaged_model_path() is None:
        pytest.skip("the packaged model is not installed: scripts/setup.sh installs requirements/packaged-models.txt")


def test_the_packaged_model_writes_the_trial_and_is_kept_only_if_it_matches_the_extractive_generator(packaged_model, tmp_path):
    cfg = DocpipeConfig.model_validate({"generate": {"model_trial_chunks": 2, "abstention_probes": 3}, "llm": {"model": "auto"}})
    llm = open_llm(cfg.llm, cache_dir=tmp_path / "cache")
    report = generate_dataset(_out(tmp_path, DOCS[:3]), cfg, llm=llm)
    assert report.chunks_with_content > cfg.generate.model_trial_chunks  # chunks left after the trial, for the model or not
    agent = report.llm.agent
    assert agent["model calls"] >= 2  # the trial chunks went to the packaged model, not to a fake
    model, extractive = agent["model trial acceptance %"], agent["extractive trial acceptance %"]
    dropped = agent.get("model dropped after trial", 0) == 1
    assert dropped == (model < extractive - 100 * cfg.generate.model_trial_margin)
    if dropped:  # the rest went to the rules at once: no model call after the trial
        assert agent["chunks by heuristic"] >= 1 and not report.llm.trusted
    train = [r for r in iter_jsonl(tmp_path / "dataset" / "train.jsonl") if r["kind"] == "qa"]
    assert train and report.documents_covered == report.documents_with_text == 3
