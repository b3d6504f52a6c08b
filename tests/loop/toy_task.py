"""A second task for the same loop: a scikit-learn classifier on a data set scikit-learn ships (no
download), with its own three actions and per-example scores. It proves the loop knows nothing of
language models."""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from docpipe.loop.actions import ActionDefinition, ActionSpace, Move, allowed_values
from docpipe.loop.agents import FailureSignature
from docpipe.loop.orchestrator import Trial


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    C: float = Field(default=1e-6, gt=0, le=100)  # inverse regularisation: the baseline is far too strong
    scale: bool = False
    max_iter: int = Field(default=200, ge=10, le=10000)


class ToyTask:
    name = "digits"

    def __init__(self, target: float = 0.95, fail_with: dict | None = None):
        self.target = target
        self.fail_with = fail_with or {}  # (C, scale) -> an exception raised instead of training
        self.runs: list[ToyConfig] = []
        self.actions = ActionSpace(
            [
                ActionDefinition(
                    name="C",
                    description="Inverse regularisation strength.",
                    category="training",
                    field="C",
                    values=allowed_values(ToyConfig, "C", (0.0, 1e-6, 1e-4, 1e-2, 1.0, 1000.0)),  # 0 and 1000 fall outside the bounds
                ),
                ActionDefinition(
                    name="scale",
                    description="Standardise the features.",
                    category="data",
                    field="scale",
                    values=allowed_values(ToyConfig, "scale"),
                ),
                ActionDefinition(
                    name="max_iter", description="Solver iterations.", category="training", field="max_iter", values=(50, 200, 1000)
                ),
            ]
        )
        self.signatures = (
            FailureSignature("no convergence", r"did not converge", (Move(action="max_iter", value=1000, why="more iterations"),)),
        )

    def baseline(self) -> ToyConfig:
        return ToyConfig()

    def fingerprint(self, config: BaseModel) -> str:
        return hashlib.sha256(json.dumps(config.model_dump(), sort_keys=True).encode()).hexdigest()[:12]

    def run(self, config: ToyConfig, step: int) -> Trial:
        from sklearn.datasets import load_digits
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.runs.append(config)
        failure = self.fail_with.get((config.C, config.scale, config.max_iter))
        if failure is not None:
            raise failure
        x, y = load_digits(return_X_y=True)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
        steps = [StandardScaler()] if config.scale else []
        model = make_pipeline(*steps, LogisticRegression(C=config.C, max_iter=config.max_iter))
        model.fit(x_train, y_train)
        right = model.predict(x_test) == y_test
        accuracy = float(right.mean())
        return Trial(
            run=f"digits-{self.fingerprint(config)}",
            scores={f"test{i}": float(r) for i, r in enumerate(right)},
            measures={"accuracy": accuracy},
            headline=f"accuracy {accuracy:.3f}",
            signals=["underfit"] if accuracy < 0.9 else [],
            target_met=accuracy >= self.target,
        )

    def suggestions(self, trial: Trial, config: BaseModel) -> list[Move]:
        return [Move(action="C", value=v, why="weaker regularisation") for v in (1e-4, 1e-2, 1.0)] + [Move(action="scale", value=True)]

    def describe_failure(self, config: BaseModel) -> dict:
        return {"examples": 1797, "features": 64}
