"""The loop, deterministic and generic: it knows tasks, configs, moves and per-example scores, never
what a language model is.

From a reproducible baseline, each step applies ONE move to the best config so far, so every change
in the measures is attributable to it; runs the task; and keeps the move only when it wins the
paired test against the best (`keep.paired_decision`), else goes back to the best config. A config
already run is never run again. A failure goes to the recovery agent, whose fix (a registry move)
is applied and the step retried, a bounded number of times. The loop stops when the target is met,
when no move has been kept in `plateau_steps` steps, or when a budget (steps, minutes, LLM cost)
is spent, and says which. The journal is written after every step: the same call after a crash,
a kill -9 or Ctrl-C continues from the last finished step.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from docpipe.errors import classify
from docpipe.events import EventSink, StageEvent, ignore
from docpipe.loop.actions import ActionSpace, Move, Rejected
from docpipe.loop.agents import ErrorContext, ErrorRecoveryAgent, FailureSignature, Fix, ProposalContext, ProposerAgent, RecoveryTask
from docpipe.loop.journal import Journal, StepRecord, best_step
from docpipe.loop.keep import paired_decision

STAGE = "loop"


class Trial(BaseModel):
    """What one run of the task measured."""

    model_config = ConfigDict(extra="forbid")

    run: str  # the task's name for what it made
    scores: dict[str, float]  # example id -> score, higher is better: what the paired test compares
    measures: dict[str, Any] = {}  # headline figures with their intervals, for the journal
    headline: str = ""
    signals: list[str] = []  # what the result says, for the proposer (e.g. the verdict and its reasons)
    target_met: bool = False
    cost_usd: float = 0.0


class Task(Protocol):
    """One thing the loop can improve: its config type, its moves, and how to run and judge a config."""

    name: str
    actions: ActionSpace
    signatures: tuple[FailureSignature, ...]

    def baseline(self) -> BaseModel: ...

    def fingerprint(self, config: BaseModel) -> str: ...

    def run(self, config: BaseModel, step: int) -> Trial: ...

    def suggestions(self, trial: Trial, config: BaseModel) -> list[Move]: ...

    def describe_failure(self, config: BaseModel) -> dict[str, Any]: ...


class LoopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int = 8  # runs, the baseline included
    budget_minutes: float | None = None
    max_cost_usd: float | None = None
    plateau_steps: int = 3  # stop after this many steps in a row without a kept move
    p_threshold: float = 0.1
    confidence: float = 0.95
    bootstrap_samples: int = 2000
    min_examples: int = 10
    max_retries: int = 2  # recoveries per step
    max_refusals: int = 6  # invalid or repeated proposals per step before the loop gives up proposing
    seed: int = 0


@dataclass
class LoopResult:
    best: StepRecord | None
    stop_reason: str
    steps: list[StepRecord] = field(default_factory=list)


class Loop:
    def __init__(
        self,
        task: Task,
        journal: Journal,
        settings: LoopSettings,
        proposer: ProposerAgent | None = None,
        recovery: ErrorRecoveryAgent | None = None,
        events: EventSink = ignore,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.task, self.journal, self.settings = task, journal, settings
        self.proposer, self.recovery = proposer or ProposerAgent(), recovery or ErrorRecoveryAgent()
        self.events, self.clock = events, clock

    # -- state, rebuilt from the journal on every start ------------------------------------------------
    @property
    def best(self) -> StepRecord | None:
        return best_step(self.journal.steps)

    def _config_of(self, record: StepRecord) -> BaseModel:
        return type(self.task.baseline()).model_validate(record.config)

    def _ran(self) -> set[str]:
        return {r.config_fingerprint for r in self.journal.steps if r.outcome in ("baseline", "kept", "reverted", "failed")}

    def _runs(self) -> int:
        return sum(r.outcome != "refused" for r in self.journal.steps)

    def _since_kept(self) -> int:
        count = 0
        for r in reversed(self.journal.steps):
            if r.outcome in ("baseline", "kept"):
                break
            count += r.outcome != "refused"
        return count

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self) -> LoopResult:
        started = self.clock()
        spent_before = sum(r.seconds for r in self.journal.steps)
        if self.best is None:
            record = self._step(self.task.baseline(), None, None, "")
            if record.outcome == "failed":
                return LoopResult(None, f"the baseline failed: {record.error}", self.journal.steps)
        while True:
            best = self.best
            assert best is not None
            if best.measures.get("target_met"):
                return LoopResult(best, "target met", self.journal.steps)
            reason = self._budget_spent(spent_before + self.clock() - started)
            if reason:
                return LoopResult(best, reason, self.journal.steps)
            if self._since_kept() >= self.settings.plateau_steps:
                return LoopResult(best, f"plateau: no move kept in {self.settings.plateau_steps} steps", self.journal.steps)
            proposal = self._propose(best)
            if proposal is None:
                return LoopResult(best, "no untried move left", self.journal.steps)
            move, config, label = proposal
            record = self._step(config, move, best, label)
            if record.outcome == "failed" and not self._runs_left():
                return LoopResult(self.best, "budget: steps", self.journal.steps)

    def _runs_left(self) -> bool:
        return self._runs() < self.settings.max_steps

    def _budget_spent(self, elapsed_s: float) -> str | None:
        s = self.settings
        if not self._runs_left():
            return f"budget: {s.max_steps} steps"
        if s.budget_minutes is not None:
            done = [r.seconds for r in self.journal.steps if r.outcome != "refused"]
            expected = sum(done) / len(done) if done else 0.0  # the next step, estimated as the mean so far
            if elapsed_s + expected > 60 * s.budget_minutes:
                return f"budget: {s.budget_minutes:g} minutes (spent {elapsed_s / 60:.1f}, a step takes about {expected / 60:.1f})"
        if s.max_cost_usd is not None and sum(r.cost_usd for r in self.journal.steps) >= s.max_cost_usd:
            return f"budget: ${s.max_cost_usd:g} of LLM cost"
        return None

    def _propose(self, best: StepRecord) -> tuple[Move, BaseModel, str] | None:
        """One valid move to a config never run, or None; invalid and repeated proposals are journaled as refused."""
        config = self._config_of(best)
        actions = self.task.actions
        trial = Trial(run=best.run or "", scores=best.scores, measures=best.measures, headline=best.headline)
        trial.signals = best.measures.get("signals", [])
        suggestions = self.task.suggestions(trial, config)
        tried = [f"{r.move.action} = {r.move.value}" for r in self.journal.steps if r.move and r.parent == best.step]
        for _ in range(self.settings.max_refusals):
            current = {a.name: actions.current(config, a.name) for a in actions}
            ctx = ProposalContext(actions, current, best.headline, trial.signals, tried, suggestions)
            try:
                result = self.proposer.run(ctx)
            except ValueError:  # the heuristic has nothing left
                return None
            label = f"proposer ({result.tier.value})"
            valid = actions.validate(result.value)
            if isinstance(valid, Rejected):
                hint = f"; did you mean {valid.suggestion}?" if valid.suggestion else ""
                self._refuse(best, result.value, label, f"invalid move: {valid.reason}{hint}")
                tried.append(f"{result.value.action} = {result.value.value}")
                continue
            try:
                new = actions.execute(config, valid)
            except ValueError as exc:
                self._refuse(best, valid, label, f"invalid move: {exc}")
                tried.append(f"{valid.action} = {valid.value}")
                continue
            if self.task.fingerprint(new) in self._ran():
                self._refuse(best, valid, label, "repeated: this config has been run already")
                tried.append(f"{valid.action} = {valid.value}")
                continue
            return valid, new, label
        return None

    def _refuse(self, best: StepRecord, move: Move, label: str, why: str) -> None:
        self.journal.append(
            StepRecord(step=len(self.journal.steps), parent=best.step, move=move, proposer=label, outcome="refused", error=why)
        )

    def _step(self, config: BaseModel, move: Move | None, best: StepRecord | None, label: str) -> StepRecord:
        """Run `config` (recovering from failures through the registry), judge it against `best`, journal it."""
        number = len(self.journal.steps)
        self.events(StageEvent(stage=STAGE, step=self._runs() + 1, total=self.settings.max_steps, message=_describe(move)))
        tick = self.clock()
        recoveries: list[str] = []
        errors: list[str] = []
        fingerprint = self.task.fingerprint(config)
        while True:
            try:
                trial = self.task.run(config, number)
                break
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of a step goes to recovery, and is journaled
                errors.append(_one_line(exc))
                fix = self._recover(exc, config, errors, recoveries)
                if fix.move is None or len(recoveries) >= self.settings.max_retries:
                    record = StepRecord(
                        step=number,
                        parent=best.step if best else None,
                        move=move,
                        proposer=label,
                        config_fingerprint=fingerprint,
                        config=config.model_dump(mode="json"),
                        outcome="failed",
                        error=errors[-1],
                        recovery="; ".join([*recoveries, fix.why]),
                        seconds=round(self.clock() - tick, 1),
                    )
                    self.journal.append(record)
                    return record
                config = self.task.actions.execute(config, fix.move)
                recoveries.append(f"{fix.signature}: {fix.move.action} = {fix.move.value}")
        decision = None
        outcome = "baseline"
        if best is not None:
            s = self.settings
            decision = paired_decision(
                best.scores,
                trial.scores,
                p_threshold=s.p_threshold,
                confidence=s.confidence,
                samples=s.bootstrap_samples,
                min_examples=s.min_examples,
                seed=s.seed,
            )
            outcome = "kept" if decision.kept else "reverted"
        record = StepRecord(
            step=number,
            parent=best.step if best else None,
            move=move,
            proposer=label,
            config_fingerprint=self.task.fingerprint(config),
            config=config.model_dump(mode="json"),
            outcome=outcome,
            run=trial.run,
            measures={**trial.measures, "signals": trial.signals, "target_met": trial.target_met},
            scores=trial.scores,
            headline=trial.headline,
            decision=decision,
            error="; ".join(errors) or None,
            recovery="; ".join(recoveries) or None,
            seconds=round(self.clock() - tick, 1),
            cost_usd=trial.cost_usd,
        )
        self.journal.append(record)
        return record

    def _recover(self, exc: Exception, config: BaseModel, errors: list[str], recoveries: list[str]) -> Fix:
        """The recovery agent's fix: a valid registry move not tried in this step, or no move with the reason."""
        known = classify(exc, getattr(exc, "stage", STAGE))
        kind = known.kind.value if known is not None else type(exc).__name__
        ctx = ErrorContext(
            message=_one_line(exc),
            kind=kind,
            traceback="".join(traceback.format_exception(exc)[-6:])[-2000:],
            stage=getattr(exc, "stage", None),
            config=config.model_dump(mode="json"),
            data_shape=self.task.describe_failure(config),
            previous_errors=errors[:-1],
        )
        tried = [r.split(": ", 1)[1] for r in recoveries]
        fix = self.recovery.run(RecoveryTask(ctx, self.task.actions, self.task.signatures, tried)).value
        if fix.move is None:
            return fix
        valid = self.task.actions.validate(fix.move)
        if isinstance(valid, Rejected):
            return Fix(signature=fix.signature, why=f"the proposed fix is not a valid move: {valid.reason}")
        if f"{valid.action} = {valid.value}" in tried:
            return Fix(signature=fix.signature, why=f"the fix {valid.action} = {valid.value} was tried already")
        return fix.model_copy(update={"move": valid})


def _describe(move: Move | None) -> str:
    return "baseline" if move is None else f"{move.action} = {move.value}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
