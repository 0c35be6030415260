"""tdrag.config: YAML round trip, overrides, errors naming the key, and the shipped presets."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from tdrag.config import (
    CONFIG_VERSION,
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
        model={"name": "tdrag_no_gru", "attention": {"stages": (3,)}, "temporal_strides": (1, 1, 2, 1),
               "head": {"design": "last_step+orthogonal", "hidden": 8}},
        train={"lr": 0.05, "optimizer": "adamw", "amp": False},
        synth={"clips": 35},
    )
    save_config(config, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == config
    # The file is plain YAML (no python tuples) and has the format's version and every section.
    raw = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert list(raw) == ["version", "data", "model", "train", "synth"] and raw["version"] == CONFIG_VERSION
    assert raw["data"]["crop_scale"] == [0.5, 0.9]
    assert raw["model"]["attention"] == {"design": "residual", "stages": [3], "temperature": 1.0}
    assert raw["model"]["head"]["design"] == "last_step+orthogonal"
    assert config_from_dict(config_to_dict(config)) == config


@pytest.mark.parametrize("given, written", [("orthogonal+last_step", "last_step+orthogonal"), ("gru", "gru"),
                                            ("gru+no_norm", "no_norm"), ("no_pooled_path+gru+orthogonal",
                                                                         "orthogonal+no_pooled_path")])
def test_a_design_is_written_one_way(given, written):
    # In its registry's order, the chosen design left out when others change it: equal configs compare equal.
    assert load_config(None, [f"model.head.design={given}"]).model.head.design == written


def test_partial_file_keeps_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 3\n")
    config = load_config(tmp_path / "c.yaml")
    assert config.train.epochs == 3
    assert config.model == Config().model


def test_overrides_section_and_bare_keys():
    config = load_config(None, ["train.lr=0.5", "fold=4", "model.attention.stages=[2, 4]", "flip=false",
                                "run_dir=runs/x", "hidden=12", "model.causal_time=true"])
    assert config.train.lr == 0.5 and isinstance(config.train.lr, float)
    assert config.data.fold == 4
    assert config.model.attention.stages == (2, 4)
    assert config.data.flip is False
    assert config.train.run_dir == "runs/x"
    assert config.model.head.hidden == 12 and config.model.causal_time is True


def test_overrides_in_the_keys_of_config_format_1_still_work():
    """Overrides written before the model had parts (benchmarks/RESULTS.md's commands, scripts)."""
    config = load_config(None, ["model.gru_hidden=16", "dropout=0.0", "gru_branch_dropout=0", "gru_readout=last",
                                "model.gru_init=orthogonal", "attention_mask=softmax", "attention_temperature=0.5",
                                "model.attention_stages=[3]"])
    expected = replace(Config(), model={"attention": {"design": "softmax", "stages": (3,), "temperature": 0.5},
                                        "head": {"design": "last_step+orthogonal", "hidden": 16, "dropout": 0.0,
                                                 "branch_dropout": 0.0}})
    assert config == expected
    # An error about an old key names what was typed.
    given = r"^model\.head\.dropout: must be in \[0, 1\), got 1\.5 \(given as model\.dropout\)$"
    with pytest.raises(ConfigError, match=given):
        load_config(None, ["model.dropout=1.5"])
    with pytest.raises(ConfigError, match=r"^model\.gru_readout: 'max' is not one of mean, last, attention$"):
        load_config(None, ["gru_readout=max"])


def test_replace_reaches_the_parts_and_reads_format_1_keys():
    config = replace(Config(), model={"head": {"hidden": 8}, "width": 4})
    assert (config.model.head.hidden, config.model.head.layers, config.model.width) == (8, 1, 4)
    assert replace(Config(), model={"gru_hidden": 8, "dropout": 0.2}).model.head == replace(
        Config(), model={"head": {"hidden": 8, "dropout": 0.2}}).model.head


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
        ("design=gru", r"key 'design' is ambiguous \(in model.attention, model.head\)"),
        ("model.head=gru", r"'model.head' holds fields \(design, hidden, layers, dropout, branch_dropout\)"),
        ("model.head.nope=1", "unknown key 'model.head.nope'"),
        ("model.head.design=lstm", "model.head.design: 'lstm' is not one of gru, last_step"),
        ("model.head.design=gru+gru", "model.head.design: 'gru\\+gru' names a design twice"),
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
    path.write_text("model:\n  head:\n    hiden: 16\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'model\.head\.hiden'"):
        load_config(path)
    path.write_text("model:\n  head: gru\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: 'model\.head' must be a mapping"):
        load_config(path)
    path.write_text("version: 3\n")
    with pytest.raises(ConfigError, match=r"version: 3 is not a config format this tdrag reads \(1\.\.2.*\(in .*bad\.yaml\)"):
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
    "model.attention.design": _registry("tdrag.models.tdrag", "ATTENTIONS"),
    "model.head.design": _registry("tdrag.models.tdrag", "HEADS"),
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
    from tdrag.config import CHOICES, DESIGNS

    assert CHOICES[key] == REGISTRIES[key]()
    default = functools.reduce(getattr, key.split("."), Config())
    assert default in CHOICES[key], f"{key}'s default {default!r} is not one of its names"
    if key in DESIGNS:  # the chosen design is the registry's first, and the default
        assert default == CHOICES[key][0]
