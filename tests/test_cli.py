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
    for command in ("ingest", "generate", "train", "eval", "export", "chat", "doctor", "status"):
        assert command in result.output


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from docpipe.cli import app; "
        "heavy = [m for m in ('torch', 'unstructured', 'kreuzberg', 'transformers', 'llama_cpp', 'litellm', 'numpy', 'spacy', 'psutil', 'peft', 'trl', 'mlx', 'unsloth') if m in sys.modules]; "
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
        "for args in (['--help'], ['eval', '--help'], ['export', '--help'], ['chat', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n    assert result.exit_code == 0, result.output\n"
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
    assert " on " in info["training"]  # e.g. "hf on cpu (no CUDA GPU: ...)"; every branch: tests/trainers/test_dispatch.py


def _documents(out):
    from docpipe.store import write_jsonl
    from tests.qa.builders import document

    write_jsonl(
        out / "documents.jsonl",
        [
            document(
                "guide.txt",
                [
                    ("The Alder Reading Room opens at 8:30 on weekdays.", None),
                    ("Borrowers may keep short loan books for 48 hours. The late fine is 2 euros per day.", None),
                ],
            )
        ],
    )


def test_generate_before_ingest_says_what_to_run(tmp_path):
    result = runner.invoke(app, ["generate", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "docpipe ingest" in result.output and len(result.output.strip().splitlines()) == 1


def test_generate_then_status(tmp_path):
    _documents(tmp_path)
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--model", "none"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dataset" / "train.jsonl").is_file()
    status = runner.invoke(app, ["status", "--out", str(tmp_path)])
    assert "dataset:" in status.output and "train" in status.output


def test_generate_with_no_optional_package_falls_back_to_the_extractive_generator(tmp_path):
    # No llama-cpp-python, no litellm, no spaCy: `auto` finds no model and tier 3 makes the dataset.
    _documents(tmp_path)
    code = (
        "import sys\n"
        "for name in ('llama_cpp', 'litellm', 'spacy', 'torch', 'unstructured', 'kreuzberg'):\n"
        "    sys.modules[name] = None\n"
        "from typer.testing import CliRunner\nfrom docpipe.cli import app\n"
        f"result = CliRunner().invoke(app, ['generate', '--out', {str(tmp_path)!r}])\n"
        "assert result.exit_code == 0, result.output\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    report = (tmp_path / "dataset" / "report.json").read_text()
    assert "none (extractive generator)" in report and '"documents_covered": 1' in report
