import pytest

from tests.trainers.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random llama with a ChatML tokenizer, built once per session (about a second)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
