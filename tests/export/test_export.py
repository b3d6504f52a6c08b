"""`docpipe export` end to end on tiny models really trained: GGUF files llama.cpp loads and runs
like the trained model (one per supported architecture), a gate that catches planted bugs, resume
after an interrupt, and the command's output and errors."""

import shutil
from pathlib import Path

import pytest
from gguf import GGUFReader
from typer.testing import CliRunner

from docpipe.cli import app
from docpipe.config import DocpipeConfig, ExportConfig, TrainConfig
from docpipe.layout import Layout
from docpipe.runtime import gguf_quantize as quantize
from docpipe.runtime import gguf_vocab, gguf_writer
from docpipe.runtime.hardware import Hardware
from docpipe.store import sha256_file
from export import ExportError, pipeline
from tests.export.ollama_modelfile import parse
from tests.stages import export_run, train_run
from tests.trainers.tiny_model import build_tiny_model, tiny_dataset

CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=2)
_trained: dict[str, Path] = {}


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """family -> an output folder with a dataset and a finished run (trained once per module, a few seconds each)."""

    def get(family: str) -> Path:
        if family not in _trained:
            root = tmp_path_factory.mktemp(f"run-{family}")
            base = build_tiny_model(root / "base", family=family, init_std=0.3)
            tiny_dataset(root / "out" / "dataset", pairs=16)
            # a high learning rate, so the adapter moves the model far enough for a wrong merge to show
            cfg = DocpipeConfig(train=TrainConfig(base_model=str(base), batch_size=4, max_steps=4, learning_rate=1e-2, threads=1))
            train_run(root / "out", cfg, hardware=CPU)
            _trained[family] = root / "out"
        return _trained[family]

    return get


@pytest.fixture
def out(trained_runs, tmp_path, request):
    """A private copy of a trained output folder (the family is the test's parameter, llama by default)."""
    family = getattr(request, "param", "llama")
    target = tmp_path / "my-docs"
    shutil.copytree(trained_runs(family), target)
    return target


def _export(out: Path, **options):
    return export_run(out, DocpipeConfig(export=ExportConfig(threads=1, **options)))


@pytest.mark.parametrize("out", ["llama", "qwen2", "gemma3"], indirect=True)
def test_export_writes_ggufs_that_llama_cpp_runs_like_the_trained_model(out):
    result = _export(out)

    folder = out / "export"
    assert result.passed and result.name == "my-docs"
    assert [p.file for p in result.parity] == ["my-docs-f16.gguf", "my-docs-q8_0.gguf", "my-docs-q4_k_m.gguf"]
    assert [p.gate for p in result.parity] == ["pass", "pass", "report"]
    for figures in result.parity:
        assert (folder / figures.file).is_file() and figures.token_mismatches == [] and figures.positions > 100
    f16 = result.parity[0]
    assert f16.top1_agreement >= 0.97 and f16.mean_kl < 1e-4  # f16 rounding only

    run = next((out / "runs").iterdir())
    fields = {k: f.contents() for k, f in GGUFReader(folder / "my-docs-f16.gguf").fields.items()}
    assert fields["general.docpipe.adapter_sha256"] == sha256_file(run / "adapter" / "adapter_model.safetensors")
    assert fields["general.docpipe.run_id"] == run.name and fields["general.name"] == "my-docs"
    assert fields["docpipe.system_prompt"] == pipeline.training_system_prompt(Layout(out).dataset)

    commands = parse((folder / "Modelfile").read_text(encoding="utf-8"))
    assert commands[0] == ("model", "./my-docs-q8_0.gguf")
    assert dict(commands)["system"] == pipeline.training_system_prompt(Layout(out).dataset)
    assert {name for name, _ in commands} >= {"template", "stop", "num_ctx", "temperature", "system"}
    assert "## Parity" in (folder / "README.md").read_text() and (folder / "parity.json").is_file()


@pytest.mark.parametrize("out", ["gemma3"], indirect=True)
def test_llama_cpp_warnings_stay_out_of_the_output(out, capfd):
    capfd.readouterr()
    assert _export(out, quantizations=["f16"], modelfile_quantization="f16").passed
    err = capfd.readouterr().err
    assert "Added a BOS token" not in err and "llama_" not in err  # a probe starts with BOS; SWA notes at load


def test_the_gguf_carries_the_training_chat_template_and_provenance(out):
    _export(out, quantizations=["f16"], modelfile_quantization="f16")
    trained = pipeline.finished_run(Layout(out), None)
    fields = {k: f.contents() for k, f in GGUFReader(out / "export" / "my-docs-f16.gguf").fields.items()}
    assert fields["tokenizer.chat_template"] == trained.chat_template
    assert fields["general.docpipe.dataset_sha256"] == trained.dataset_sha256
    assert fields["general.docpipe.docpipe_version"] and fields["general.base_model.0.name"] == trained.base_model
    assert fields["tokenizer.ggml.pre"] == "gpt-2" and fields["tokenizer.ggml.model"] == "gpt2"


@pytest.mark.parametrize("dtype", ["bf16", "f32"])
def test_the_other_float_types_pass_their_gates(out, dtype):
    result = _export(out, quantizations=[dtype, "q4_0"], modelfile_quantization=dtype)
    assert result.passed and [p.gate for p in result.parity] == ["pass", "report"]


def test_a_transposed_qk_permutation_fails_the_gate(out, monkeypatch):
    monkeypatch.setattr(gguf_writer, "rotary_to_gguf", lambda weights, heads: weights)  # the planted bug

    result = CliRunner().invoke(app, ["export", "--out", str(out), "-q", "f16", "-q", "q8_0"])

    assert result.exit_code == 1, result.output
    assert "parity gate failed" in result.output and "my-docs-f16.gguf" in result.output
    report = (out / "export" / "parity.json").read_text()
    assert '"passed": false' in report
    assert not (out / "export" / "Modelfile").exists()  # nothing for `ollama create` to pick up


def test_a_wrong_bos_flag_fails_the_gate(out, monkeypatch):
    from gguf import GGUFValueType

    real = gguf_vocab.hf_tokenizer

    def with_bos(*args):  # the planted bug: BOS added to every prompt, which training never saw
        fields = [f for f in real(*args) if f.key != "tokenizer.ggml.add_bos_token"]
        return [
            *fields,
            gguf_vocab.Field("tokenizer.ggml.add_bos_token", True, GGUFValueType.BOOL),
            gguf_vocab.Field("tokenizer.ggml.bos_token_id", 1, GGUFValueType.UINT32),
        ]

    monkeypatch.setattr(gguf_vocab, "hf_tokenizer", with_bos)
    result = _export(out, quantizations=["f16"], modelfile_quantization="f16")

    assert not result.passed and result.parity[0].gate == "fail"
    assert "tokenise differently" in result.parity[0].reason
    assert any("ids differ at position 0" in m for m in result.parity[0].token_mismatches)


def test_an_interrupted_export_resumes_without_redoing_finished_files(out, monkeypatch):
    real = quantize.quantize

    def interrupted(source, dest, quant, threads):
        if quant == "q4_k_m":
            raise KeyboardInterrupt
        real(source, dest, quant, threads)

    monkeypatch.setattr(quantize, "quantize", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _export(out)
    assert sorted(p.name for p in (out / "export").glob("*.gguf")) == ["my-docs-f16.gguf", "my-docs-q8_0.gguf"]
    assert not list((out / "export").glob(".*partial"))

    quantised = []
    monkeypatch.setattr(gguf_writer, "write_gguf", lambda *a, **k: pytest.fail("the finished F16 file was written again"))
    monkeypatch.setattr(
        quantize, "quantize", lambda source, dest, quant, threads: (quantised.append(quant), real(source, dest, quant, threads))
    )
    result = _export(out)
    assert quantised == ["q4_k_m"] and result.passed

    quantised.clear()
    assert _export(out).passed and quantised == []  # everything there: only the gate runs again


def test_export_prints_the_ollama_commands(out):
    result = CliRunner().invoke(app, ["export", "--out", str(out), "-q", "f16", "-q", "q8_0"])

    assert result.exit_code == 0, result.output
    modelfile = out / "export" / "Modelfile"
    assert f"ollama create my-docs -f {modelfile}" in result.output and "ollama run my-docs" in result.output
    status = CliRunner().invoke(app, ["status", "--out", str(out)])
    assert "export: my-docs from run" in status.output and "my-docs-q8_0.gguf (pass)" in status.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "My Docs!"], "characters Ollama does not accept"),
        (["--modelfile-quant", "q4_0"], "is not in export.quantizations"),
        (["--run", "nosuchrun"], "no finished training run 'nosuchrun'"),
        (["-q", "f16", "-q", "bf16", "--modelfile-quant", "f16"], "list only one of f16, bf16, f32"),
    ],
)
def test_bad_options_are_one_clear_line(out, args, message):
    result = CliRunner().invoke(app, ["export", "--out", str(out), *args])
    assert result.exit_code == 2 and message in result.output
    assert result.output.count("\n") == 1


def test_a_damaged_run_is_one_clear_line(out):
    run = next((out / "runs").iterdir())
    adapter = run / "adapter" / "adapter_model.safetensors"
    adapter.write_bytes(adapter.read_bytes()[:1000])  # a truncated copy
    result = CliRunner().invoke(app, ["export", "--out", str(out)])
    assert result.exit_code == 2 and "cannot load the trained model" in result.output and result.output.count("\n") == 1

    (run / "train_result.json").write_text('{"run_id": ')
    result = CliRunner().invoke(app, ["export", "--out", str(out)])
    assert result.exit_code == 2 and "train_result.json is damaged" in result.output and result.output.count("\n") == 1


def test_a_full_disk_is_one_clear_line_and_leaves_no_partial_file(out, monkeypatch):
    def full(path, *args, **kwargs):
        path.write_bytes(b"GGUF half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf_writer, "write_gguf", full)
    result = CliRunner().invoke(app, ["export", "--out", str(out)])
    assert result.exit_code == 2 and "could not write the export" in result.output and "No space left" in result.output
    assert not list((out / "export").glob("*.gguf")) and not list((out / "export").glob(".*partial"))


def test_a_moved_output_folder_still_exports(out):
    """The paths recorded at training time may be gone: the run's own adapter is used, and the base found again."""
    result_path = next((out / "runs").iterdir()) / "train_result.json"
    trained = pipeline.finished_run(Layout(out), None)
    # base_model is the tiny model's folder, so it is found again by name
    moved = trained.model_copy(update={"adapter": "/nonexistent/adapter", "base_path": "/nonexistent/base"})
    result_path.write_text(moved.model_dump_json())
    assert _export(out, quantizations=["f16"], modelfile_quantization="f16").passed


def test_export_before_training_says_what_to_run(tmp_path):
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "run `docpipe train --out" in result.output


def test_a_damaged_dataset_record_is_one_clear_line(tmp_path):
    dataset = Layout(tmp_path).dataset
    tiny_dataset(dataset.root, pairs=4)
    assert [m["role"] for m in pipeline.parity_conversations(dataset, 2)[0]] == ["system", "user", "assistant"]
    dataset.eval.write_text('{"id": "p1", "messages": [{"role": "user", "content": "Why?"}]}\n', encoding="utf-8")
    with pytest.raises(
        ExportError, match=r"eval.jsonl line 1 is not a training record \(question: Field required\): run `docpipe generate` again$"
    ):
        pipeline.parity_conversations(dataset, 2)


def test_model_names_are_what_ollama_accepts(tmp_path):
    assert pipeline.model_name(None, tmp_path / "My Company Docs") == "my-company-docs"
    assert pipeline.model_name("handbook-v2", tmp_path) == "handbook-v2"
    with pytest.raises(ExportError):
        pipeline.model_name("Handbook V2", tmp_path)
