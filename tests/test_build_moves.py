"""The document task's target and the heuristic proposer's ranking: an ok verdict short of the target still
moves, and the first move is the one the knowledge benchmark says fixes the measure that is short."""

from __future__ import annotations

import pytest

from docpipe.build.moves import action_space, suggestions
from docpipe.build.task import Target
from docpipe.cli import _target
from docpipe.config import DocpipeConfig, updated
from docpipe.contracts import EvalReport
from docpipe.loop.actions import Move


def report(verdict: str) -> EvalReport:
    return EvalReport.model_construct(verdict=verdict)


def test_an_ok_verdict_is_not_the_default_target_when_citations_or_abstention_fall_short():
    figures = {"right_document": 0.76, "abstention": 0.73, "new_words_f1": 0.32}
    short = Target().shortfalls(report("ok"), figures)
    assert [s.split()[1] for s in short] == ["right_document", "abstention"]
    assert Target().met(report("ok"), {**figures, "right_document": 0.92, "abstention": 0.8})
    assert not Target().met(report("overfit"), {**figures, "right_document": 0.92, "abstention": 0.8})
    assert Target(right_document=None, abstention=None).met(report("ok"), figures)  # the verdict alone, when asked for


def test_the_first_suggestion_fixes_what_is_short_and_no_move_repeats_or_is_a_no_op():
    cfg = DocpipeConfig()
    cfg = updated(cfg, generate=updated(cfg.generate, phrasings_per_fact=2, refusal_share=0.1))
    ranked = suggestions(["ok", "short: right_document (0.76, wanted 0.9)", "short: abstention (0.73, wanted 0.8)"], cfg)
    assert (ranked[0].action, ranked[0].value) == ("phrasings_per_fact", 3)
    assert ("refusal_share", 0.2) in [(m.action, m.value) for m in ranked]
    assert len({(m.action, repr(m.value)) for m in ranked}) == len(ranked)
    only_abstention = suggestions(["ok", "short: abstention (0.73, wanted 0.8)"], cfg)
    assert (only_abstention[0].action, only_abstention[0].value) == ("refusal_share", 0.2)
    limited = suggestions(["ok", "short: right_document (0.76, wanted 0.9)", "time-limited: time budget: 7.5 min ..."], cfg)
    assert "target_exposures" not in [m.action for m in limited]  # the epochs were cut to the time: no more would fit
    assert "target_exposures" in [m.action for m in ranked]
    actions = action_space(("base",))
    assert all(isinstance(actions.validate(m), Move) for m in ranked)  # every suggestion is in the ACTION_SPACE


def test_targets_on_the_command_line_replace_the_default_set():
    assert _target([]) == Target()
    assert _target(["f1=0.4"]) == Target(verdict_ok=False, right_document=None, abstention=None, new_words_f1=0.4)
    with pytest.raises(ValueError, match="use verdict=ok"):
        _target(["f1=high"])


def test_the_profiler_starts_from_the_whole_recipe_and_caps_a_step_to_fit_the_budget():
    from docpipe.build.profile import CorpusProfile, ProfilerAgent, ProfileTask

    examples = CorpusProfile(
        documents=7, failed=0, formats={"md": 7}, chars=7630, median_document_chars=1017, non_ascii_share=0.0, with_headings=0.4,
        with_pages=0.1, chunks=24, duplicate_chunk_share=0.0, facts=111, facts_per_chunk=4.6, cores=2, gpu=None,
    )  # fmt: skip
    start = ProfilerAgent().run(ProfileTask(examples, 30)).value
    assert start.chunk_tokens == 256 and start.phrasings_per_fact == 3
    assert 9 <= start.time_budget_minutes <= 11  # 12 exposures of 111 facts at ~188 tokens/s: about 10 minutes
    tight = ProfilerAgent().run(ProfileTask(examples, 10)).value
    assert tight.time_budget_minutes == 4.5 and "capped" in tight.why  # 45% of the build's budget
