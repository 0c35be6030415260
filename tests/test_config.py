"""tdrag.config: YAML round trip, overrides, errors naming the key, and the shipped presets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tdrag.config import (
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    replace,
    save_config,
)

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_round_trip_through_yaml(tmp_path):
    config = replace(
        Config(),
        data={"fold": 3, "crop_scale": (0.5, 0.9), "val_fraction": 0.1},
        model={"name": "tdrag_no_gru", "attention_stages": (3,), "temporal_strides": (1, 1, 2, 1)},
        train={"lr": 0.05, "optimizer": "adamw", "amp": False},
        synth={"clips": 35},
    )
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config
    # The file is plain YAML (no python tuples) and has every section.
    raw = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert set(raw) == {"data", "model", "train", "synth"}
    assert raw["data"]["crop_scale"] == [0.5, 0.9]
    assert config_from_dict(config_to_dict(config)) == config


def test_partial_file_keeps_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 3\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.train.epochs == 3
    assert config.model == Config().model


def test_overrides_section_and_bare_keys():
    config = load_config(None, ["train.lr=0.5", "fold=4", "model.attention_stages=[2, 4]", "flip=false", "run_dir=runs/x"])
    assert config.train.lr == 0.5 and isinstance(config.train.lr, float)
    assert config.data.fold == 4
    assert config.model.attention_stages == (2, 4)
    assert config.data.flip is False
    assert config.train.run_dir == "runs/x"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.nope=1", "unknown key 'train.nope'"),
        ("nope=1", "key 'nope' is unknown"),
        ("bogus.lr=1", "unknown key 'bogus.lr'"),
        ("train.epochs=ten", "train.epochs: expected an integer"),
        ("train.epochs=1.5", "train.epochs: expected an integer"),
        ("train.amp=maybe", "train.amp: expected true/false"),
        ("data.crop_scale=[0.5]", "data.crop_scale: expected 2 items"),
        ("model.temporal_strides=[1, 2, x, 1]", r"model.temporal_strides\[2\]: expected an integer"),
        ("train.lr", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [override])


def test_unknown_key_and_wrong_type_in_file_name_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  widht: 16\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.widht'"):
        load_config(path)
    path.write_text("train:\n  batch_size: big\n")
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer"):
        load_config(path)
    path.write_text("optimiser:\n  lr: 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_shipped_presets_exist():
    names = {p.stem for p in CONFIGS}
    assert {"synthetic_demo", "dfew_tdrag", "dfew_r3d18"} <= names
    assert {"ablation_tdrag_no_attention", "ablation_tdrag_no_gru", "ablation_tdrag_uniform"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_preset_loads_and_names_a_model(path):
    from tdrag.models.registry import MODEL_NAMES

    config = load_config(path)
    assert config.model.name in MODEL_NAMES
    assert config.train.optimizer in ("sgd", "adamw")
    assert config.train.schedule in ("cosine", "step")
    assert config.data.keyframes in ("redundancy", "uniform")
    assert config.data.crop <= config.data.size


def _registry(module: str, name: str):
    import importlib

    return lambda: tuple(getattr(importlib.import_module(module), name))


#: Each choice field's registry: the implementing module's own list (or dict by name). config sits
#: below these modules and cannot import them; this table ties them instead. A new choice field of
#: a config section adds its pair here (and its names to tdrag.config.CHOICES).
REGISTRIES = {
    "data.dataset": _registry("tdrag.data.datasets", "READERS"),
    "data.keyframes": _registry("tdrag.data.keyframes", "KEYFRAME_METHODS"),
    "model.name": _registry("tdrag.models.registry", "MODEL_NAMES"),
    "model.attention_mask": _registry("tdrag.models.attention", "MASK_KINDS"),
    "model.gru_input_norm": _registry("tdrag.models.gru_head", "INPUT_NORMS"),
    "model.gru_readout": _registry("tdrag.models.gru_head", "READOUTS"),
    "model.gru_init": _registry("tdrag.models.gru_head", "GRU_INITS"),
    "train.optimizer": _registry("tdrag.train.schedule", "OPTIMIZERS"),
    "train.schedule": _registry("tdrag.train.schedule", "SCHEDULES"),
    "train.step_loss": _registry("tdrag.train.losses", "STEP_LOSSES"),
    "train.attention_penalty": _registry("tdrag.train.losses", "ATTENTION_PENALTIES"),
    "synth.preset": _registry("tdrag.data.synthetic.presets", "PRESETS"),
    "synth.layout": _registry("tdrag.data.synthetic.layouts", "LAYOUTS"),
}


def test_every_choice_field_has_its_registry():
    from tdrag.config import CHOICES

    assert set(REGISTRIES) == set(CHOICES)


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_each_choice_is_its_registry(key):
    """The names config accepts are exactly the ones the library implements, in the same order."""
    from tdrag.config import CHOICES

    assert CHOICES[key] == REGISTRIES[key]()
    section, name = key.split(".")
    default = getattr(getattr(Config(), section), name)
    assert default in CHOICES[key], f"{key}'s default {default!r} is not one of its names"
