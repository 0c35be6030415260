"""tdrag.models (build_model, build_model_from_config, MODEL_NAMES)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tdrag.config import ModelConfig
from tdrag.models import MODEL_NAMES, R3D18, TDRAG, build_model, build_model_from_config
from tdrag.models.gru_head import GRUHead


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
    with pytest.raises(ValueError, match="unknown model 'resnet50'.*r3d18"):
        build_model("resnet50")
    with pytest.raises(ValueError, match="unknown option.*'hidden'"):
        build_model("tdrag", hidden=3)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("width", 0),
        ("temporal_strides", (1, 2, 1)),
        ("temporal_strides", (1, 0, 1, 1)),
        ("attention_stages", (5,)),
        ("attention_stages", (2, 2)),
        ("gru_hidden", 0),
        ("gru_layers", 0),
        ("dropout", 1.0),
    ],
)
def test_bad_option_values_name_the_option(option, value):
    with pytest.raises(ValueError, match=f"model option {option}"):
        build_model("tdrag", **{"width": 8, option: value})


def test_bad_num_classes():
    with pytest.raises(ValueError, match="num_classes"):
        build_model("r3d18", num_classes=0)


def test_options_reach_the_model():
    model = build_model("tdrag", num_classes=4, width=8, temporal_strides=(1, 1, 2, 1), attention_stages=(4,), gru_hidden=12, gru_layers=2, dropout=0.25)
    assert model.temporal_strides == (1, 1, 2, 1)
    assert model.attention_stages == (4,)
    assert model.layer1[0].conv1[0].out_channels == 8
    assert isinstance(model.head, GRUHead)
    assert (model.head.gru.hidden_size, model.head.gru.num_layers) == (12, 2)
    assert model.head.dropout.p == 0.25
    assert model.head.fc.out_features == 4


def test_variants_ignore_options_that_do_not_apply():
    r3d = build_model("r3d18", width=8, temporal_strides=(1, 1, 1, 1), attention_stages=(2,), gru_hidden=5)
    assert r3d.temporal_strides == (1, 2, 2, 2)
    assert build_model("tdrag_no_attention", width=8, attention_stages=(2, 3)).attention_stages == ()


def test_build_model_from_config_uses_every_field():
    cfg = dataclasses.replace(ModelConfig(), name="tdrag_no_gru", num_classes=5, width=8, temporal_strides=(1, 1, 1, 1), attention_stages=(3,), dropout=0.1)
    model = build_model_from_config(cfg)
    assert model.variant == "tdrag_no_gru"
    assert model.temporal_strides == (1, 1, 1, 1)
    assert model.attention_stages == (3,)
    assert model.head.dropout.p == 0.1
    assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, 5)
    gru = build_model_from_config(dataclasses.replace(ModelConfig(), width=8, gru_hidden=9, gru_layers=2))
    assert (gru.head.gru.hidden_size, gru.head.gru.num_layers) == (9, 2)
