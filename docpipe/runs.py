"""Finding a finished training run in an output folder: what evaluation and export both start from."""

from __future__ import annotations

from pathlib import Path

from docpipe.contracts import TrainResult
from docpipe.errors import DocpipeError, ErrorKind
from docpipe.layout import Layout


def finished_run(layout: Layout, run_id: str | None, error: type[DocpipeError]) -> TrainResult:
    """The run `run_id`, or the most recently finished one, with its adapter where the run folder is now.

    Raises:
        error: (the calling stage's DocpipeError) no such run, no finished run, or a damaged train_result.json; the
            message says what to run.
    """
    out_dir = layout.root
    if run_id:
        path = layout.run(run_id).result
        if not path.is_file():
            raise error(
                f"no finished training run {run_id!r} in {layout.runs}; `docpipe status --out {out_dir}` lists them",
                kind=ErrorKind.missing_input,
            )
    else:
        done = layout.finished_runs()
        if not done:
            raise error(
                f"no finished training run in {out_dir}: run `docpipe train --out {out_dir}` first",
                kind=ErrorKind.missing_input,
            )
        path = done[-1].result
    try:
        trained = TrainResult.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # pydantic's ValidationError: a truncated or edited file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise error(
            f"{path} is damaged ({first}); delete {path.parent} and run `docpipe train --out {out_dir}` again",
            kind=ErrorKind.damaged,
        ) from None
    # The adapter beside the result, not the path recorded at training time: the output folder may have moved.
    return trained.model_copy(update={"adapter": str(layout.run(path.parent.name).adapter)})


def base_folder(trained: TrainResult, layout: Layout, error: type[DocpipeError]) -> Path:
    """The run's base model folder; a packaged base whose converted copy is gone (a moved or cleaned
    output folder) is converted again into the cache, and must be the same file as trained on."""
    from docpipe.runtime import pretrained

    base = Path(trained.base_path)
    if base.is_dir():
        return base
    try:
        again = pretrained.resolve(trained.base_model, layout.base_models_cache)
    except pretrained.BaseModelError as exc:
        raise error(f"the run's base model folder {base} is gone and cannot be made again: {exc}", kind=ErrorKind.missing_input) from None
    if again.sha256 != trained.base_sha256:
        raise error(
            f"the run's base model folder {base} is gone, and {trained.base_model} is now a different model; "
            "train again with `docpipe train`",
            kind=ErrorKind.missing_input,
        )
    return again.path
