"""Config: YAML -> pydantic with unknown keys rejected, then CLI overrides."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from docpipe.config import DEFAULT_CONFIG, ConfigError, DocpipeConfig, load_config, updated


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


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _models(field.annotation)


def test_configs_are_values_a_change_is_a_new_validated_config():
    cfg = DocpipeConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.train.epochs = 3
    more = updated(cfg.train, epochs=3, lora_rank=8)
    assert (more.epochs, more.lora_rank, cfg.train.epochs, cfg.train.lora_rank) == (3, 8, None, 16)
    with pytest.raises(ConfigError, match="lora_rank: Input should be greater than or equal to 1"):
        updated(cfg.train, lora_rank=0)
    with pytest.raises(ConfigError, match="Extra inputs are not permitted"):
        updated(cfg.train, lora_rnak=8)  # a misspelled move fails as loudly as a misspelled key


def test_every_numeric_setting_has_both_bounds():
    """The coming action registry reads a setting's allowed values from its bounds."""
    unbounded = []
    for model in set(_models(DocpipeConfig)):
        assert model.model_config.get("frozen"), model.__name__
        for name, field in model.model_fields.items():
            if not any(t in str(field.annotation) for t in ("int", "float")) or "dict" in str(field.annotation):
                continue
            kinds = {type(m).__name__ for m in field.metadata}
            if not ({"Ge", "Gt"} & kinds and {"Le", "Lt"} & kinds):
                unbounded.append(f"{model.__name__}.{name}")
    assert unbounded == []
