"""`docpipe build --track mlflow`: the journal mirrored into MLflow, for teams that compare runs there.

Each loop step becomes an MLflow run (params: the step's effective config, its fingerprint, parent and move;
metrics: its measures, intervals as `_low`/`_high`; tags: outcome, proposer, decision; artifacts: the run's
eval report and the journal), and the best step's run is registered under the `champion` alias. The journal
stays the source of truth: logging is idempotent (a step already logged is found by its tag and skipped), so
a resumed build logs only what is new. mlflow (extra `track`) is imported only here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from docpipe.layout import Layout
from docpipe.loop.journal import StepRecord

CHAMPION = "champion"


class MlflowTracker:
    def __init__(self, layout: Layout, uri: str | None = None, experiment: str | None = None):
        try:
            import mlflow
        except ImportError:
            from docpipe.build import BuildError

            raise BuildError("--track mlflow needs the `track` extra: .venv/bin/pip install -e '.[track]'") from None
        if uri is None:  # a file store beside the outputs; MLflow 3 asks for an explicit opt-in to it
            uri = (layout.root / "mlruns").resolve().as_uri()
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.layout, self.uri = layout, uri
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.name = experiment or f"docpipe-{layout.root.resolve().name}"
        found = self.client.get_experiment_by_name(self.name)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(self.name)

    def log(self, record: StepRecord) -> str:
        """The step's MLflow run id, creating the run unless an earlier call already did."""
        logged = self._logged()
        if record.step in logged:
            return logged[record.step]
        from mlflow.entities import Metric, Param, RunTag

        tags = {"docpipe.step": str(record.step), "outcome": record.outcome, "proposer": record.proposer}
        tags |= {"docpipe.run": record.run or "", "decision": record.decision.why if record.decision else (record.error or "")}
        run = self.client.create_run(self.experiment_id, run_name=f"step {record.step}: {_move(record)}", tags=tags)
        params = {"fingerprint": record.config_fingerprint, "parent": str(record.parent), "move": _move(record)}
        params |= {key: str(value)[:6000] for key, value in _flat(record.config).items()}
        metrics = [Metric(key, value, 0, record.step) for key, value in _numbers(record.measures).items()]
        metrics.append(Metric("seconds", record.seconds, 0, record.step))
        self.client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("headline", record.headline[:5000])],
        )
        for path in self._artifacts(record):
            self.client.log_artifact(run.info.run_id, str(path))
        self.client.set_terminated(run.info.run_id, "FAILED" if record.outcome == "failed" else "FINISHED")
        return run.info.run_id

    def crown(self, record: StepRecord) -> None:
        """Register the best step's run and point the `champion` alias at it (done again only when the best changes)."""
        run_id = self.log(record)
        try:
            current = self.client.get_model_version_by_alias(self.name, CHAMPION)
            if current.run_id == run_id:
                return
        except Exception:  # no registered model or no alias yet: MLflow raises for both
            if not self.client.search_registered_models(f"name = '{self.name}'"):
                self.client.create_registered_model(self.name)
        artifact_uri = self.client.get_run(run_id).info.artifact_uri
        version = self.client.create_model_version(self.name, source=artifact_uri, run_id=run_id)
        self.client.set_registered_model_alias(self.name, CHAMPION, version.version)

    def _logged(self) -> dict[int, str]:
        runs = self.client.search_runs([self.experiment_id], max_results=10_000)
        return {int(r.data.tags["docpipe.step"]): r.info.run_id for r in runs if "docpipe.step" in r.data.tags}

    def _artifacts(self, record: StepRecord) -> list[Path]:
        paths = [self.layout.journal_md]
        if record.run:
            run = self.layout.run(record.run)
            paths += [run.eval_report, run.eval_html]
        return [p for p in paths if p.is_file()]


def _move(record: StepRecord) -> str:
    return f"{record.move.action} = {record.move.value}" if record.move else "baseline"


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _numbers(measures: dict[str, Any]) -> dict[str, float]:
    """Numeric measures as metrics; an interval {value, low, high, ...} as `name`, `name_low`, `name_high`."""
    out: dict[str, float] = {}
    for key, value in _flat(measures).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            name = key.removesuffix(".value").replace(".", "_")
            out[name] = float(value)
    return out
