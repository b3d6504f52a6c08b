"""open_llm picks the backend from LLMConfig.model; the packaged model is checked by hash;
importing docpipe.llm stays cheap and works without the optional backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from docpipe.config import LLMConfig
from docpipe.llm import factory, open_llm
from docpipe.llm.gateway import Gateway
from docpipe.runtime import packaged


def test_none_means_no_model(tmp_path):
    assert open_llm(LLMConfig(model="none"), tmp_path) is None


def test_auto_without_the_packaged_model_means_no_model(monkeypatch, tmp_path):
    monkeypatch.setattr(packaged, "packaged_model_path", lambda: None)
    assert open_llm(LLMConfig(model="auto"), tmp_path) is None


def test_a_missing_gguf_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GGUF file"):
        open_llm(LLMConfig(model=str(tmp_path / "missing.gguf")), tmp_path)


def test_a_model_string_goes_to_litellm(tmp_path):
    pytest.importorskip("litellm")
    gateway = open_llm(LLMConfig(model="openai/gpt-4o-mini", concurrency=7), tmp_path)
    assert isinstance(gateway, Gateway)
    assert (gateway.model, gateway.supports_schema, gateway.concurrency) == ("openai/gpt-4o-mini", True, 7)


def test_the_packaged_model_is_found_and_verified():
    if packaged.packaged_model_path() is None:
        pytest.skip("the packaged model is not installed: scripts/setup.sh installs requirements/packaged-models.txt")
    path = packaged.verified_model_path()
    assert path.name == packaged.MODEL_FILE


def test_a_packaged_model_with_another_hash_is_refused(monkeypatch):
    if packaged.packaged_model_path() is None:
        pytest.skip("the packaged model is not installed")
    monkeypatch.setattr(packaged, "_verified", set())
    monkeypatch.setattr(packaged, "MODEL_SHA256", "0" * 64)
    with pytest.raises(packaged.PackagedModelError, match="expected 0000"):
        packaged.verified_model_path()


def test_packaged_model_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(packaged, "packaged_model_path", lambda: None)
    with pytest.raises(packaged.PackagedModelError, match="packaged-models.txt"):
        packaged.verified_model_path()


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_importing_docpipe_llm_loads_no_backend():
    done = run_python("""
        import sys
        import docpipe.llm, docpipe.cli
        print(sorted(m for m in ("litellm", "llama_cpp", "numpy", "openai") if m in sys.modules))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("blocked", "model", "extra"),
    [
        ("litellm", "openai/gpt-4o-mini", "docpipe[api]"),
        ("llama_cpp", factory.__file__, "docpipe[local]"),  # any existing file ending .gguf would do
    ],
)
def test_a_missing_backend_names_its_extra(tmp_path, blocked, model, extra):
    if model.endswith(".py"):
        model = str(tmp_path / "model.gguf")
        (tmp_path / "model.gguf").write_bytes(b"GGUF")
    done = run_python(f"""
        import sys
        sys.modules[{blocked!r}] = None  # as if not installed
        from docpipe.config import LLMConfig
        from docpipe.llm import open_llm
        try:
            open_llm(LLMConfig(model={model!r}), None)
        except ImportError as exc:
            print(exc)
    """)
    assert done.returncode == 0, done.stderr
    assert extra in done.stdout


def test_auto_without_llama_cpp_means_no_model():
    done = run_python("""
        import importlib.util
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name == "llama_cpp" else real(name, *a)
        from docpipe.config import LLMConfig
        from docpipe.llm import open_llm
        print(open_llm(LLMConfig(model="auto"), None))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
