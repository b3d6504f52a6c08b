"""Backend dispatch: every branch with a faked hardware probe, the fallback chain, threads,
and the CPU path with each optional package blocked."""

import subprocess
import sys

import pytest

from docpipe.runtime.hardware import Hardware, choose_threads
from trainers.backend import BackendUnavailable
from trainers.dispatch import Choice, choose, fallback_chain

CPU = Hardware(cuda=None, mps=False, apple_silicon=False, cores=2)
CUDA = Hardware(cuda="NVIDIA H100", mps=False, apple_silicon=False, cores=16)
MAC = Hardware(cuda=None, mps=True, apple_silicon=True, cores=8)


def everything(_):
    return True


def without(*missing):
    return lambda package: package not in missing


@pytest.mark.parametrize(
    "hw, installed, expected",
    [
        (CUDA, everything, ("unsloth", "cuda")),
        (CUDA, without("unsloth"), ("hf", "cuda")),
        (MAC, everything, ("mlx", "metal")),
        (MAC, without("mlx_lm"), ("hf", "mps")),
        (CPU, everything, ("hf", "cpu")),
    ],
)
def test_auto_picks_the_best_backend_the_machine_has(hw, installed, expected):
    choice = choose("auto", "auto", hw, installed)
    assert (choice.backend, choice.device) == expected
    assert choice.reason  # recorded in train_result.json


def test_the_reason_says_what_to_install_when_the_preferred_backend_is_missing():
    assert "pip install 'docpipe[cuda]'" in choose("auto", "auto", CUDA, without("unsloth")).reason
    assert "pip install 'docpipe[mlx]'" in choose("auto", "auto", MAC, without("mlx_lm")).reason


def test_backend_override_wins_over_auto():
    assert choose("hf", "auto", CUDA, everything) == Choice("hf", "cuda", "asked for (--backend hf)")
    assert choose("hf", "cpu", CUDA, everything).device == "cpu"
    assert choose("mlx", "auto", CPU, everything).backend == "mlx"  # mlx runs on Linux CPU too


def test_unsloth_without_a_gpu_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="needs a CUDA GPU.*--backend hf"):
        choose("unsloth", "auto", CPU, everything)


@pytest.mark.parametrize("backend, extra", [("unsloth", "cuda"), ("mlx", "mlx"), ("hf", "train")])
def test_a_missing_package_names_the_extra_to_install(backend, extra):
    with pytest.raises(BackendUnavailable, match=rf"pip install 'docpipe\[{extra}\]'"):
        choose(backend, "auto", CUDA, lambda package: False)


def test_unknown_backend_and_impossible_device_are_refused():
    with pytest.raises(BackendUnavailable, match="unknown backend 'tpu'"):
        choose("tpu", "auto", CPU, everything)
    with pytest.raises(BackendUnavailable, match="no CUDA GPU"):
        choose("hf", "cuda", CPU, everything)
    with pytest.raises(BackendUnavailable, match="no Apple GPU"):
        choose("hf", "mps", CPU, everything)


def test_fallback_chain():
    assert [(c.backend, c.device) for c in fallback_chain(Choice("unsloth", "cuda", ""), CUDA)] == [("hf", "cuda"), ("hf", "cpu")]
    assert [(c.backend, c.device) for c in fallback_chain(Choice("hf", "cuda", ""), CUDA)] == [("hf", "cpu")]
    assert [(c.backend, c.device) for c in fallback_chain(Choice("mlx", "metal", ""), MAC)] == [("hf", "mps"), ("hf", "cpu")]
    assert [(c.backend, c.device) for c in fallback_chain(Choice("mlx", "cpu", ""), CPU)] == [("hf", "cpu")]
    assert fallback_chain(Choice("hf", "cpu", ""), CPU) == []


def test_threads_leave_busy_cores_alone():
    assert choose_threads(None, CPU, other_load=lambda: 0.1) == 2
    assert choose_threads(None, CPU, other_load=lambda: 1.0) == 1
    assert choose_threads(None, CPU, other_load=lambda: 5.0) == 1
    assert choose_threads(3, CPU, other_load=lambda: 5.0) == 3  # asked for: obeyed


def _run_blocked(blocked: list[str], code: str) -> subprocess.CompletedProcess:
    script = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n{code}"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_cpu_training_works_with_every_optional_package_blocked(tiny_model, tmp_path):
    from tests.trainers.tiny_model import tiny_dataset

    tiny_dataset(tmp_path / "dataset", pairs=8)
    code = (
        "from typer.testing import CliRunner\nfrom docpipe.cli import app\n"
        f"r = CliRunner().invoke(app, ['train', '--out', {str(tmp_path)!r}, '--base-model', {str(tiny_model)!r}, '--max-steps', '2'])\n"
        "print(r.output); assert r.exit_code == 0, r.output\n"
    )
    # Blocked together: the CPU path imports none of them, so each alone is covered too.
    done = _run_blocked(["unsloth", "unsloth_zoo", "bitsandbytes", "mlx", "mlx_lm", "llama_cpp", "litellm", "mlflow"], code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hf on cpu" in done.stdout
    assert list(tmp_path.glob("runs/*/adapter/adapter_model.safetensors"))


def test_help_does_not_import_training_packages():
    done = _run_blocked(
        ["torch", "transformers", "peft", "trl", "unsloth", "mlx"],
        "from typer.testing import CliRunner\nfrom docpipe.cli import app\n"
        "r = CliRunner().invoke(app, ['train', '--help'])\nassert r.exit_code == 0, r.output\nprint(r.output)",
    )
    assert done.returncode == 0, done.stderr
    assert "--base-model" in done.stdout


def test_training_never_reaches_the_network():
    """huggingface_hub started a telemetry thread during `docpipe train`; the trainers package turns it off."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    code = "import trainers\nfrom huggingface_hub import constants\nprint(constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_TELEMETRY)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.split() == ["True", "True"], done.stderr
