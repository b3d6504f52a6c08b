"""The generic loop on a toy task (a scikit-learn classifier): the ACTION_SPACE, the keep rule, the stop
reasons, error recovery and resuming from the journal, with scripted proposers where a model would be."""

from __future__ import annotations

import json

import pytest

from docpipe.loop.actions import Move, Rejected
from docpipe.loop.agents import ProposerAgent
from docpipe.loop.journal import Journal
from docpipe.loop.keep import paired_decision
from docpipe.loop.orchestrator import Loop, LoopSettings
from tests.agents.fake_llm import FakeLLM
from tests.loop.toy_task import ToyConfig, ToyTask

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def journal(tmp_path) -> Journal:
    return Journal(tmp_path / "journal.jsonl", tmp_path / "journal.md", "toy")


def scripted(*moves: dict) -> ProposerAgent:
    """A proposer whose model replies with the given moves in turn (then repeats the last)."""
    replies = [json.dumps(m) for m in moves]
    return ProposerAgent(FakeLLM(lambda messages, schema, n: replies[min(n, len(replies)) - 1]))


def test_the_action_space_validates_names_and_values_and_executes_into_a_new_config():
    actions = ToyTask().actions
    assert actions.validate(Move(action=" c ", value="1e-2")) == Move(action="C", value=0.01)
    rejected = actions.validate(Move(action="scal", value=True))
    assert isinstance(rejected, Rejected) and rejected.suggestion == "scale"
    assert isinstance(actions.validate(Move(action="C", value=0.5)), Rejected)  # not an allowed value
    assert actions.validate(Move(action="scale", value="yes")).value is True
    config = ToyConfig()
    new = actions.execute(config, Move(action="C", value=1.0))
    assert new.C == 1.0 and config.C == 1e-6  # a new config; the old one is unchanged
    assert [a.values for a in actions if a.name == "C"] == [(1e-6, 1e-4, 1e-2, 1.0)]  # the field's bounds cut the ladder
    assert "You can ONLY choose" in actions.render() and "C (training)" in actions.render()


def test_the_heuristic_proposer_reaches_the_target_and_each_kept_move_won_a_paired_test(tmp_path):
    task = ToyTask(target=0.95)
    result = Loop(task, journal(tmp_path), LoopSettings(max_steps=6)).run()
    assert result.stop_reason == "target met"
    steps = result.steps
    assert steps[0].outcome == "baseline" and steps[0].measures["accuracy"] < 0.5
    kept = [s for s in steps if s.outcome == "kept"]
    assert kept and all(s.decision.p_value < 0.1 and s.decision.low > 0 for s in kept)
    assert result.best.measures["accuracy"] >= 0.95
    assert "| 0 |  | baseline |" in (tmp_path / "journal.md").read_text()


def test_invalid_and_repeated_moves_are_refused_and_a_move_that_does_not_win_is_reverted(tmp_path):
    proposer = scripted(
        {"action": "learning_rate", "value": 0.1, "why": "hallucinated"},
        {"action": "C", "value": 1.0, "why": "weaker"},
        {"action": "C", "value": 1.0, "why": "again"},
        {"action": "max_iter", "value": 1000, "why": "more iterations, same result"},
        {"action": "C", "value": 0.5, "why": "not allowed"},
    )
    result = Loop(ToyTask(target=1.0), journal(tmp_path), LoopSettings(max_steps=3, max_refusals=3), proposer=proposer).run()
    outcomes = [(s.outcome, s.move.action if s.move else None) for s in result.steps]
    assert outcomes[:3] == [("baseline", None), ("refused", "learning_rate"), ("kept", "C")]
    assert result.steps[1].error.startswith("invalid move") and result.steps[1].proposer == "proposer (structured)"
    assert ("refused", "C") in outcomes  # the same config again
    reverted = [s for s in result.steps if s.move and s.move.action == "max_iter"]
    assert reverted and reverted[0].outcome == "reverted" and not reverted[0].decision.kept
    assert result.stop_reason == "budget: 3 steps"


def test_each_stop_reason(tmp_path):
    plateau = Loop(
        ToyTask(target=1.0),
        journal(tmp_path / "p"),
        LoopSettings(max_steps=20, plateau_steps=1),
        proposer=scripted({"action": "max_iter", "value": 1000}),
    ).run()
    assert plateau.stop_reason == "plateau: no move kept in 1 steps"
    ticks = iter(range(0, 10_000, 100))  # every clock reading is 100 s later: the second step would overrun 3 minutes
    timed = Loop(ToyTask(target=1.0), journal(tmp_path / "t"), LoopSettings(budget_minutes=3), clock=lambda: next(ticks)).run()
    assert timed.stop_reason.startswith("budget: 3 minutes")
    exhausted = Loop(ToyTask(target=1.0), journal(tmp_path / "e"), LoopSettings(max_steps=20, plateau_steps=20)).run()
    assert exhausted.stop_reason == "no untried move left"
    steps = Loop(ToyTask(target=1.0), journal(tmp_path / "s"), LoopSettings(max_steps=2, plateau_steps=20)).run()
    assert steps.stop_reason == "budget: 2 steps" and len(steps.steps) == 2

    class PaidTask(ToyTask):  # each run calls a priced model
        def run(self, config, step):
            return super().run(config, step).model_copy(update={"cost_usd": 0.3})

    paid = Loop(PaidTask(target=1.0), journal(tmp_path / "c"), LoopSettings(max_steps=20, plateau_steps=20, max_cost_usd=0.5)).run()
    assert paid.stop_reason == "budget: $0.5 of LLM cost" and len(paid.steps) == 2


def test_a_failure_is_recovered_through_the_registry_and_the_journal_says_how(tmp_path):
    task = ToyTask(target=0.95, fail_with={(1e-2, False, 200): RuntimeError("lbfgs did not converge")})
    result = Loop(task, journal(tmp_path), LoopSettings(max_steps=4)).run()
    recovered = next(s for s in result.steps if s.recovery)
    assert recovered.recovery == "no convergence: max_iter = 1000" and recovered.outcome in ("kept", "reverted")
    assert recovered.config["max_iter"] == 1000 and "did not converge" in recovered.error


def test_an_unknown_failure_is_journaled_and_the_loop_goes_on_from_the_best(tmp_path):
    task = ToyTask(target=0.95, fail_with={(1e-2, False, 200): ValueError("something nobody has seen")})
    result = Loop(task, journal(tmp_path), LoopSettings(max_steps=5)).run()
    failed = next(s for s in result.steps if s.outcome == "failed")
    assert "something nobody has seen" in failed.error and failed.recovery == "no known failure matches"
    assert result.stop_reason == "target met"


def test_a_restarted_loop_continues_from_its_journal(tmp_path):
    first = ToyTask(target=0.99)
    Loop(first, journal(tmp_path), LoopSettings(max_steps=2)).run()
    assert len(first.runs) == 2
    again = ToyTask(target=0.99)
    result = Loop(again, journal(tmp_path), LoopSettings(max_steps=4)).run()
    assert again.runs and again.runs[0] not in first.runs  # nothing finished is run again
    assert [s.step for s in result.steps] == list(range(len(result.steps)))


def test_the_keep_rule_needs_both_the_test_and_the_interval():
    best = {f"q{i}": 0.0 for i in range(40)}
    better = {f"q{i}": 1.0 if i < 20 else 0.0 for i in range(40)}
    assert paired_decision(best, better).kept
    noise = {f"q{i}": 1.0 if i in (1, 2) else 0.0 for i in range(40)}
    assert not paired_decision(best, noise).kept
    worse = {f"q{i}": 0.0 for i in range(40)}
    assert not paired_decision(better, worse).kept
    few = paired_decision({"a": 0.0}, {"a": 1.0})
    assert not few.kept and "not comparable" in few.why
