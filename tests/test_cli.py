"""The CLI: instant help, clear one-line errors, and no heavy imports at start-up."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from docpipe.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "doctor", "status"):
        assert command in result.output


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from docpipe.cli import app; "
        "heavy = [m for m in ('torch', 'unstructured', 'kreuzberg', 'transformers', 'llama_cpp', 'psutil') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_works_with_optional_packages_blocked():
    # As if none of the heavy extras were installed: `docpipe --help` must not care.
    code = (
        "import sys\n"
        "for name in ('torch', 'unstructured', 'kreuzberg', 'unsloth', 'mlx', 'llama_cpp', 'mlflow'):\n"
        "    sys.modules[name] = None\n"
        "from typer.testing import CliRunner\nfrom docpipe.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\nassert result.exit_code == 0, result.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ingest_of_a_missing_folder_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "input folder not found" in result.output


def test_a_file_instead_of_a_folder_says_so(tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("text")
    result = runner.invoke(app, ["ingest", str(doc), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "is a file: give the folder that holds it" in result.output


def test_empty_folder_says_no_files_found(tmp_path):
    (tmp_path / "docs").mkdir()
    result = runner.invoke(app, ["ingest", str(tmp_path / "docs"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0
    assert "no files found" in result.output
    assert (tmp_path / "out" / "documents.jsonl").read_text() == ""


def test_an_output_folder_that_cannot_be_written_is_one_clear_line(tmp_path):
    (tmp_path / "docs").mkdir()
    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder should go")
    result = runner.invoke(app, ["ingest", str(tmp_path / "docs"), "--out", str(taken)])
    assert result.exit_code == 2
    assert "cannot write the output folder" in result.output and "choose another --out" in result.output


def test_bad_config_is_one_clear_line(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("ingest:\n  wrokers: 2\n")
    result = runner.invoke(app, ["ingest", str(tmp_path), "--config", str(bad)])
    assert result.exit_code == 2
    assert "ingest.wrokers" in result.output


def test_status_of_a_missing_folder(tmp_path):
    result = runner.invoke(app, ["status", "--out", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no output folder" in result.output


def test_doctor_reports_engines_and_formats():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0
    import json

    info = json.loads(result.output)
    assert info["engines"]["zip"] == []
    assert "pdf" in info["formats"]
