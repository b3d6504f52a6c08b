"""`docpipe status` on a build: the loop's best step, what it tried, what failed and the move it would try next,
read from a journal like the one the loop writes."""

from __future__ import annotations

from docpipe.config import DocpipeConfig
from docpipe.layout import Layout
from docpipe.loop.actions import Move
from docpipe.loop.journal import Journal, StepRecord
from docpipe.status import summarize


def test_status_shows_the_builds_best_step_its_moves_and_the_next_one(tmp_path):
    layout = Layout(tmp_path)
    config = DocpipeConfig().model_dump(mode="json")
    journal = Journal(layout.journal_jsonl, layout.journal_md, "docpipe build docs")
    journal.append(
        StepRecord(
            step=0, parent=None, config=config, outcome="baseline", run="r0", measures={"verdict": "ungrounded"}, headline="tuned 40%"
        )
    )
    faster = Move(action="learning_rate", value=1e-3, why="learn faster")
    journal.append(StepRecord(step=1, parent=0, move=faster, config=config, outcome="reverted", run="r1", headline="tuned 41%"))
    journal.append(
        StepRecord(step=2, parent=0, move=Move(action="batch_size", value=16), config=config, outcome="failed", error="out of memory")
    )

    shown = summarize(layout)

    assert "build: 3 steps; best is step 0 (run r0, verdict ungrounded): tuned 40%" in shown
    assert "1 reverted" in shown and "1 failed" in shown
    assert "step 2 failed: batch_size = 16: out of memory" in shown
    assert "next move: refusal_share = 0.2 (teach abstention)" in shown  # what an ungrounded verdict calls for first


def test_status_without_a_build_says_nothing_about_one(tmp_path):
    assert "build:" not in summarize(Layout(tmp_path))
