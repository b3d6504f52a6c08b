"""Config: YAML -> pydantic with unknown keys rejected, then CLI overrides."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from docpipe.config import DEFAULT_CONFIG, ConfigError, DocpipeConfig, load_config


def test_default_preset_matches_the_model_defaults():
    assert load_config() == DocpipeConfig()
    assert DEFAULT_CONFIG.is_file()


def test_overrides_beat_the_file_and_none_is_ignored(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  timeout_s: 30\n  workers: 3\n")
    cfg = load_config(path, {"ingest.workers": 1, "ingest.timeout_s": None})
    assert (cfg.ingest.workers, cfg.ingest.timeout_s) == (1, 30)


def test_misspelled_key_fails_loudly(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ingest:\n  timout_s: 30\n")
    with pytest.raises(ConfigError, match="ingest.timout_s: Extra inputs are not permitted"):
        load_config(path)


def test_missing_and_broken_files_say_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_every_field_is_described():
    def walk(model: type[BaseModel]):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            if isinstance(field.default, BaseModel):
                walk(type(field.default))

    walk(DocpipeConfig)
