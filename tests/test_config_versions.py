"""tdrag.config_versions: old config dicts mapped to the current format, once, by their version."""

from __future__ import annotations

import pytest

from tdrag.config import CHOICES, DESIGNS, Config, ConfigError, config_from_dict, config_to_dict, load_config
from tdrag.config_versions import CONFIG_VERSION, V1_DESIGNS, upgrade
from tests.config_format1 import V1_MODEL

#: The same section in format 2, written out by hand.
V2_MODEL = {
    "name": "tdrag", "num_classes": 7, "width": 16, "temporal_strides": [1, 2, 1, 1], "causal_time": False,
    "pretrained": "", "attention": {"design": "residual", "stages": [2, 3, 4], "temperature": 1.0},
    "head": {"design": "gru", "hidden": 64, "layers": 1, "dropout": 0.1, "branch_dropout": 0.5},
}


def test_a_format_1_model_section_becomes_format_2():
    assert upgrade({"model": V1_MODEL}) == {"model": V2_MODEL}
    assert upgrade({"version": 1, "model": V1_MODEL}, saved=True) == {"model": V2_MODEL}
    # Each flag that differs from the chosen value names its design, joined in registry order.
    flags = {"gru_readout": "last", "gru_residual": False, "gru_input_norm": "none", "attention_pooling": True,
             "attention_mask": "softmax", "attention_temperature": 0.5}
    model = upgrade({"model": {**V1_MODEL, **flags}})["model"]
    assert model["head"]["design"] == "last_step+no_norm+no_pooled_path"
    assert model["attention"] == {"design": "softmax+pooling", "stages": [2, 3, 4], "temperature": 0.5}


def test_a_current_dict_passes_unchanged_without_its_version():
    raw = config_to_dict(Config())
    assert raw["version"] == CONFIG_VERSION
    assert upgrade(raw) == {k: v for k, v in raw.items() if k != "version"}
    # A hand-written file without a version may use format 2's keys: they pass through format 1's map.
    assert upgrade({"model": {"head": {"hidden": 8}}}) == {"model": {"head": {"hidden": 8}}}


def test_a_key_a_saved_format_1_config_lacks_did_not_exist_yet():
    old = {k: v for k, v in V1_MODEL.items() if not k.startswith(("gru_input", "gru_readout", "gru_residual",
                                                                     "gru_init", "gru_bidirectional", "gru_branch"))}
    saved = upgrade({"model": old}, saved=True)["model"]["head"]
    assert saved == {"design": "last_step+no_norm+no_pooled_path", "hidden": 64, "layers": 1, "dropout": 0.1,
                     "branch_dropout": 0.0}
    # By hand, a missing key means its default, as it always did.
    assert upgrade({"model": old})["model"]["head"] == {"hidden": 64, "layers": 1, "dropout": 0.1}


def test_format_1s_sigmoid_ignored_its_temperature_and_its_map_keeps_that():
    sigmoid = upgrade({"model": {**V1_MODEL, "attention_temperature": 0.3}})["model"]["attention"]
    assert sigmoid["temperature"] == 1.0  # format 2's sigmoid divides by it: 1 keeps the network
    assert upgrade({"model": {"attention_temperature": 0.3}})["model"]["attention"]["temperature"] == 1.0
    learned = {**V1_MODEL, "attention_temperature": 0.3, "attention_learn_temperature": True}
    assert upgrade({"model": learned})["model"]["attention"]["temperature"] == 0.3


def test_every_format_1_flag_names_a_registered_design_and_every_design_has_its_flag():
    named = {part: {name for (key, _), name in V1_DESIGNS.items() if key.startswith(prefix)}
             for part, prefix in (("model.attention.design", "attention"), ("model.head.design", "gru"))}
    for key in DESIGNS:
        assert named[key] == set(CHOICES[key][1:]), key


@pytest.mark.parametrize("model, message", [
    ({"gru_readout": "max"}, r"model\.gru_readout: 'max' is not one of mean, last, attention"),
    ({"gru_bidirectional": 1}, r"model\.gru_bidirectional: 1 is not one of False, True"),
    ({"gru_hidden": 8, "head": {"hidden": 16}}, r"model\.gru_hidden: given together with model\.head\.hidden"),
    ({"gru_readout": "last", "head": {"design": "gru"}},
     r"model\.gru_readout: given together with model\.head\.design"),
    ({"gru_hidden": 8, "head": "gru"}, r"model\.head: must be a mapping"),
])
def test_bad_format_1_values_name_the_key(model, message):
    with pytest.raises(ValueError, match=message):
        upgrade({"model": model})
    with pytest.raises(ConfigError, match=message + r".* \(in f\.yaml\)$"):
        config_from_dict({"model": model}, source="f.yaml")


@pytest.mark.parametrize("version", [0, CONFIG_VERSION + 1, "2", True])
def test_an_unknown_version_is_refused(version):
    with pytest.raises(ValueError, match=rf"^version: {version!r} is not a config format this tdrag reads"):
        upgrade({"version": version})


def test_shipped_presets_and_a_format_1_file_read_alike(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("model:\n  name: tdrag\n  width: 16\n  attention_stages: [2, 3, 4]\n  gru_hidden: 64\n"
                    "  dropout: 0.1\n")
    new = load_config(None, ["model.width=16", "model.head.hidden=64", "model.head.dropout=0.1"])
    assert load_config(path) == new
