"""Checkpoints of every config format open as the network they trained (tdrag.config_versions).

Each test writes a checkpoint the way the tdrag of that format wrote it: its config dict spelled
out here (format 1: the flat model section with design flags; its first generation without the
flags added later) and weights with the parameter names that tdrag used. Loading must rebuild the
same network: the weights fit strictly and the outputs are the ones expected.
"""

from __future__ import annotations

import pytest
import torch

from tdrag.config import CONFIG_VERSION, Config, ModelConfig, config_to_dict, replace
from tdrag.models.registry import build_model_from_config, load_model
from tdrag.runs.checkpoints import CheckpointError, checkpoint_config, save_checkpoint, stored_config
from tests.config_format1 import V1_MODEL as LAST_V1_MODEL

#: A format-1 model section as the last tdrag of that format stored it (runs/ablation_order's, at width 8).
V1_MODEL = {**LAST_V1_MODEL, "width": 8, "gru_hidden": 8}
#: The keys format 1 gained after its first checkpoints (the first head had none of them).
ADDED_LATER = ("gru_input_norm", "gru_readout", "gru_residual", "gru_init", "gru_bidirectional",
               "attention_residual", "attention_pooling", "attention_learn_temperature", "gru_branch_dropout")


def _checkpoint(tmp_path, model_section: dict, weights: dict, version: int | None = None):
    """A checkpoint file whose config has ``model_section`` (and no ``version`` unless given)."""
    raw = config_to_dict(replace(Config(), data={"frames": 8}))
    del raw["version"]
    raw["model"] = model_section
    if version is not None:
        raw["version"] = version
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"config": raw, "model": weights, "epoch": 1})
    return path


def _cfg(attention: dict | None = None, head: dict | None = None) -> ModelConfig:
    """A width-8 model config with the given parts (a GRU of 8 units unless given)."""
    head = {"hidden": 8, **(head or {})}
    return replace(Config(), model={"width": 8, "attention": attention or {}, "head": head}).model


def _trained(cfg: ModelConfig, seed: int = 0) -> torch.nn.Module:
    """A model of ``cfg`` whose zero-initialised parts (GRU branch, attention logits, BN statistics)
    hold values, as after training."""
    torch.manual_seed(seed)
    model = build_model_from_config(cfg).eval()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.startswith(("head.project", "head.score")) or ".logits." in name:
                tensor.normal_(0, 0.3)
            elif name.endswith("running_mean"):
                tensor.normal_(0, 0.1)
    return model


def _clips() -> torch.Tensor:
    return torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))


def test_a_first_generation_checkpoint_rebuilds_the_first_head(tmp_path):
    # Written before the head's design fields existed: the GRU on the raw pooled features, the
    # classifier on its last state, no branch dropout, whatever today's defaults are.
    section = {k: v for k, v in V1_MODEL.items() if k not in ADDED_LATER}
    weights = _trained(_cfg(head={"design": "no_norm+last_step+no_pooled_path"}))
    head_keys = {k for k in weights.state_dict() if k.startswith("head.")}
    assert head_keys == {"head.gru.weight_ih_l0", "head.gru.weight_hh_l0", "head.gru.bias_ih_l0", "head.gru.bias_hh_l0",
                         "head.fc.weight", "head.fc.bias"}  # the first head's parameters, as it stored them
    model, config = load_model(_checkpoint(tmp_path, section, weights.state_dict()))
    assert config.model.head.design == "last_step+no_norm+no_pooled_path" and config.model.head.branch_dropout == 0.0
    assert config.model.attention.design == "residual"
    x = _clips()
    with torch.no_grad():
        # By hand: an nn.GRU with the stored weights over the spatial mean of layer4, fc on the last state.
        gru = torch.nn.GRU(64, 8, batch_first=True)
        gru.load_state_dict({k.removeprefix("head.gru."): v for k, v in weights.state_dict().items()
                             if k.startswith("head.gru.")})
        states = gru(model.features(x).mean(dim=(3, 4)).transpose(1, 2))[0]
        expected = states[:, -1] @ weights.head.fc.weight.T + weights.head.fc.bias
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


def test_a_checkpoint_from_the_head_designs_screen_keeps_its_design(tmp_path):
    # The head fields existed, the attention ones and branch dropout not yet (RESULTS.md's "Temporal
    # head designs": LayerNorm, mean readout, pooled path, orthogonal init).
    later = ("attention_residual", "attention_pooling", "attention_learn_temperature", "gru_branch_dropout")
    section = {k: v for k, v in V1_MODEL.items() if k not in later}
    section["gru_init"] = "orthogonal"
    expected = _cfg(head={"design": "orthogonal", "dropout": 0.1, "branch_dropout": 0.0})
    source = _trained(expected)
    model, config = load_model(_checkpoint(tmp_path, section, source.state_dict()))
    assert config.model == expected
    x = _clips()
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


@pytest.mark.parametrize("flags, attention, head", [
    ({}, "residual", "gru"),
    ({"gru_branch_dropout": 0.0, "causal_time": True}, "residual", "gru"),
    ({"attention_mask": "softmax", "attention_pooling": True, "attention_temperature": 0.5}, "softmax+pooling", "gru"),
    ({"attention_residual": False, "attention_learn_temperature": True}, "gate+learned_temperature", "gru"),
    ({"gru_readout": "attention", "gru_bidirectional": True, "gru_input_norm": "none"}, "residual",
     "attention_readout+bidirectional+no_norm"),
])
def test_a_last_generation_format_1_checkpoint_builds_the_designs_its_flags_name(tmp_path, flags, attention, head):
    section = {**V1_MODEL, **flags}
    config = checkpoint_config({"config": {**config_to_dict(Config()), "model": section, "version": 1}})
    assert (config.model.attention.design, config.model.head.design) == (attention, head)
    assert config.model.head.branch_dropout == section["gru_branch_dropout"]
    assert config.model.causal_time == section["causal_time"]
    assert config.model.attention.temperature == section["attention_temperature"]
    source = _trained(config.model)
    model, _ = load_model(_checkpoint(tmp_path, section, source.state_dict()))  # strict: every name fits
    x = _clips()
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_a_current_checkpoint_round_trips_and_a_newer_one_is_refused(tmp_path):
    cfg = _cfg(attention={"design": "softmax", "temperature": 0.5}, head={"design": "last_step"})
    source = _trained(cfg)
    stored = config_to_dict(Config(model=cfg))
    assert stored["version"] == CONFIG_VERSION
    path = _checkpoint(tmp_path, stored["model"], source.state_dict(), version=CONFIG_VERSION)
    model, config = load_model(path)
    assert config.model == cfg
    with torch.no_grad():
        assert torch.equal(model(_clips()), source(_clips()))
    newer = _checkpoint(tmp_path, stored["model"], source.state_dict(), version=CONFIG_VERSION + 1)
    with pytest.raises(CheckpointError, match=rf"last\.pt: stored config is not valid for this tdrag: version: "
                                              rf"{CONFIG_VERSION + 1} is not a config format this tdrag reads"):
        load_model(newer)


def test_a_format_1_config_and_its_format_2_spelling_are_the_same_stored_config():
    # What a resume compares (tdrag.train.saver): an old run resumed by today's tdrag has no changed key.
    old = {**config_to_dict(Config()), "model": V1_MODEL}
    del old["version"]
    new = _cfg(head={"dropout": 0.1, "branch_dropout": 0.5})
    assert config_to_dict(stored_config({"config": old})) == config_to_dict(Config(model=new))
