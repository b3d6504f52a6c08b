"""`docpipe status`: what an output folder holds, read from the files stages wrote."""

from __future__ import annotations

import json
from pathlib import Path

from docpipe.contracts import DatasetReport, IngestReport


def summarize(out: Path) -> str:
    lines = [f"output folder: {out.resolve()}"]
    report_path = out / "ingest_report.json"
    if not report_path.exists():
        return "\n".join(lines + ["ingest: not run yet"] + _dataset(out))
    report = IngestReport.model_validate(json.loads(report_path.read_text(encoding="utf-8")))
    failed = len(report.failures)
    lines.append(
        f"ingest: {report.parsed} of {report.files} files read from {report.input_dir} "
        f"({len(report.formats)} formats, {failed} failed or skipped) in {report.seconds:.1f} s"
    )
    lines += [f"  {path}: {reason}" for path, reason in list(report.failures.items())[:20]]
    if failed > 20:
        lines.append(f"  ... and {failed - 20} more in ingest_report.json")
    return "\n".join(lines + _dataset(out))


def _dataset(out: Path) -> list[str]:
    path = out / "dataset" / "report.json"
    if not path.exists():
        return ["dataset: not made yet (docpipe generate)"]
    report = DatasetReport.model_validate(json.loads(path.read_text(encoding="utf-8")))
    return [
        f"dataset: {report.splits.get('train', 0)} train + {report.splits.get('eval', 0)} eval pairs from "
        f"{report.documents_covered} of {report.documents_with_text} documents with text, "
        f"{report.splits.get('rejected', 0)} rejected; card: {out / 'dataset' / 'README.md'}"
    ]
