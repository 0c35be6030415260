"""tdrag.models.registry (build_model, build_model_from_config, MODEL_NAMES)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tdrag.config import AttentionConfig, ConfigError, HeadConfig, ModelConfig
from tdrag.models.registry import MODEL_NAMES, build_model, build_model_from_config
from tdrag.models.resnet3d import R3D18
from tdrag.models.tdrag import GRUHead
from tdrag.models.tdrag import TDRAG


def test_every_name_builds_the_right_class():
    assert MODEL_NAMES == ("r3d18", "tdrag", "tdrag_no_attention", "tdrag_no_gru", "tdrag_trunk")
    for name in MODEL_NAMES:
        model = build_model(name, num_classes=3, width=8)
        assert isinstance(model, R3D18 if name == "r3d18" else TDRAG)
        assert model.variant == name


def test_tdrag_trunk_is_tdrags_backbone_with_a_pooled_head():
    # TDRAG's temporal strides, no attention block, no GRU: only the strides differ from r3d18.
    trunk = build_model("tdrag_trunk", num_classes=3, width=8)
    assert trunk.temporal_strides == (1, 2, 1, 1) and trunk.attention_stages == ()
    assert not any(isinstance(m, (torch.nn.GRU, GRUHead)) for m in trunk.modules())
    r3d = build_model("r3d18", num_classes=3, width=8)
    assert sum(p.numel() for p in trunk.parameters()) == sum(p.numel() for p in r3d.parameters())


def test_unknown_name_and_option_are_clear_errors():
    with pytest.raises(ValueError, match=r"model.name: 'resnet50' is not one of r3d18, tdrag.*build_model\('resnet50'\)"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="unknown key 'model.hidden'"):
        build_model("tdrag", hidden=3)
    with pytest.raises(ValueError, match="unknown key 'model.head.hiden'"):
        build_model("tdrag", head={"hiden": 3})
    with pytest.raises(ValueError, match="pretrained"):
        build_model("tdrag", pretrained="kinetics400")


@pytest.mark.parametrize(
    ("key", "options"),
    [
        ("width", {"width": 0}),
        ("temporal_strides", {"temporal_strides": (1, 2, 1)}),
        ("temporal_strides", {"temporal_strides": (1, 0, 1, 1)}),
        ("attention.stages", {"attention": AttentionConfig(stages=(5,))}),
        ("attention.stages", {"attention": AttentionConfig(stages=(2, 2))}),
        ("attention.temperature", {"attention": AttentionConfig(temperature=0.0)}),
        ("attention.design", {"attention": AttentionConfig(design="relu")}),
        ("attention.design", {"attention": AttentionConfig(design="pooling", stages=(2, 3))}),
        ("head.hidden", {"head": HeadConfig(hidden=0)}),
        ("head.layers", {"head": HeadConfig(layers=0)}),
        ("head.dropout", {"head": HeadConfig(dropout=1.0)}),
        ("head.branch_dropout", {"head": HeadConfig(branch_dropout=-0.1)}),
        ("head.design", {"head": HeadConfig(design="lstm")}),
    ],
)
def test_bad_option_values_name_the_option(key, options):
    """Options are checked once, by the config's rules: the same error a config file gets."""
    bad = dataclasses.replace(ModelConfig(), **{"width": 8, **options})  # made by hand, never validated
    with pytest.raises(ConfigError, match=rf"^model\.{key}\b.*\(in build_model\('tdrag'\)\)$"):
        build_model_from_config(bad)
    # build_model's options are a config file's model section: the same errors.
    section = dataclasses.asdict(bad)
    del section["name"], section["pretrained"]
    with pytest.raises(ConfigError, match=rf"^model\.{key}\b.*\(in build_model\('tdrag'\)\)$"):
        build_model("tdrag", **section)


def test_bad_num_classes():
    with pytest.raises(ValueError, match="model.num_classes: must be at least 1"):
        build_model("r3d18", num_classes=0)
    with pytest.raises(ValueError, match="model.num_classes: expected an integer"):
        build_model("r3d18", num_classes=2.5)


def test_options_reach_the_model():
    model = build_model("tdrag", num_classes=4, width=8, temporal_strides=(1, 1, 2, 1), attention={"stages": (4,)},
                        head={"hidden": 12, "layers": 2, "dropout": 0.25, "branch_dropout": 0.1})
    assert model.temporal_strides == (1, 1, 2, 1)
    assert model.attention_stages == (4,)
    assert model.layer1[0].conv1[0].out_channels == 8
    assert type(model.head) is GRUHead
    assert (model.head.gru.hidden_size, model.head.gru.num_layers) == (12, 2)
    assert model.head.dropout.p == 0.25 and model.head.branch_dropout == 0.1
    assert model.head.fc.out_features == 4


def test_options_in_the_keys_of_config_format_1_still_build_the_same_model():
    torch.manual_seed(0)
    old = build_model("tdrag", width=8, gru_hidden=6, gru_layers=2, dropout=0.1, attention_stages=(3,),
                      gru_readout="last", attention_mask="softmax")
    torch.manual_seed(0)
    new = build_model("tdrag", width=8, attention={"design": "softmax", "stages": (3,)},
                      head={"design": "last_step", "hidden": 6, "layers": 2, "dropout": 0.1})
    assert type(old.head).__name__ == "LastStep" and old.attention_stages == (3,)
    for (k, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_variants_ignore_options_that_do_not_apply():
    r3d = build_model("r3d18", width=8, temporal_strides=(1, 1, 1, 1), attention={"stages": (2,)},
                      head={"hidden": 5})
    assert r3d.temporal_strides == (1, 2, 2, 2)
    assert build_model("tdrag_no_attention", width=8, attention={"stages": (2, 3)}).attention_stages == ()


def test_build_model_from_config_uses_every_field():
    cfg = ModelConfig(name="tdrag_no_gru", num_classes=5, width=8, temporal_strides=(1, 1, 1, 1),
                      attention=AttentionConfig(stages=(3,)), head=HeadConfig(dropout=0.1))
    model = build_model_from_config(cfg)
    assert model.variant == "tdrag_no_gru"
    assert model.temporal_strides == (1, 1, 1, 1)
    assert model.attention_stages == (3,)
    assert model.head.dropout.p == 0.1
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 5)
    gru = build_model_from_config(ModelConfig(width=8, head=HeadConfig(design="orthogonal", hidden=9, layers=2)))
    assert (gru.head.gru.hidden_size, gru.head.gru.num_layers) == (9, 2)
    assert type(gru.head).__name__ == "Orthogonal"


def test_designs_that_change_the_same_thing_cannot_be_combined():
    with pytest.raises(ConfigError, match=r"model.head.design: 'last_step\+attention_readout' combines two designs "
                                          r"that both change readout.*\(in build_model\('tdrag'\)\)"):
        build_model("tdrag", width=8, head={"design": "last_step+attention_readout"})
