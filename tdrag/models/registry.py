"""TDRAG and its baselines by name: ``build_model`` (a new network) and ``load_model`` (a trained one).

    model = build_model("tdrag", num_classes=7, width=16)
    logits = model(x)                 # x: (B, 3, T, H, W) float -> (B, 7)
    seen = model.inspect(x)           # ModelInspection: logits, attention, hidden_states, step_logits
    model, config = load_model("runs/demo/run")   # the checkpoint select_checkpoint picks, in eval mode

Variants: ``r3d18`` (torchvision's r3d_18, same layers and parameter count), ``tdrag``,
``tdrag_no_attention``, ``tdrag_no_gru``, and ``tdrag_trunk`` (TDRAG's backbone with its temporal
strides, neither attention nor GRU: a pooled head, as r3d18; it isolates what the strides do).
Options are ``ModelConfig``'s fields, checked by ``tdrag.config`` as a config file's are; each
variant ignores those that do not apply to it (r3d18 keeps r3d_18's temporal strides and has no
attention, GRU or dropout; no_attention and trunk ignore the attention options; no_gru and trunk
the GRU's).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn

from tdrag.config import Config, ConfigError, ModelConfig, config_from_dict
from tdrag.models.resnet3d import R3D18
from tdrag.models.tdrag import TDRAG
from tdrag.runs.checkpoints import (
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    load_weights,
    select_checkpoint,
)

#: The variants by name (config's ``model.name`` choices; tests/test_config.py ties the two).
MODEL_NAMES: tuple[str, ...] = ("r3d18", "tdrag", "tdrag_no_attention", "tdrag_no_gru", "tdrag_trunk")
#: Options that only the models with a GRU use (TDRAG's head, tdrag.models.gru_head).
_GRU_OPTIONS = ("gru_input_norm", "gru_readout", "gru_residual", "gru_init", "gru_bidirectional",
                "gru_branch_dropout")


def build_model(name: str, num_classes: int = 7, zero_init_residual: bool = False, **options: Any) -> nn.Module:
    """Build a model variant by name.

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: classifier outputs.
        zero_init_residual: start each residual block's last BatchNorm at zero (a library-only
            option; off keeps r3d_18's init).
        **options: ``ModelConfig``'s other fields (width, temporal_strides, attention_stages,
            gru_hidden, gru_layers, dropout, causal_time, attention_mask, ...); unset ones take
            its defaults.

    Raises:
        ConfigError (a ValueError): an unknown name or option, or a value of the wrong type or
            range, named as its config key (``model.width: ...``). The options are checked by
            ``tdrag.config``, the one place they are checked, exactly as a config file's.
    """
    if "pretrained" in options:
        raise ConfigError(f"build_model({name!r}): model.pretrained weights are loaded into a built model by "
                          "tdrag.models.pretrained.load_pretrained")
    model_cfg = config_from_dict({"model": {"name": name, "num_classes": num_classes, **options}},
                                 source=f"build_model({name!r})").model
    m = model_cfg
    if m.name == "r3d18":
        return R3D18(num_classes=m.num_classes, width=m.width, zero_init_residual=zero_init_residual)
    attention = m.name not in ("tdrag_no_attention", "tdrag_trunk")
    return TDRAG(
        num_classes=m.num_classes,
        width=m.width,
        temporal_strides=m.temporal_strides,
        attention_stages=m.attention_stages if attention else (),
        use_gru=m.name not in ("tdrag_no_gru", "tdrag_trunk"),
        gru_hidden=m.gru_hidden,
        gru_layers=m.gru_layers,
        dropout=m.dropout,
        zero_init_residual=zero_init_residual,
        variant=m.name,
        causal_time=m.causal_time,
        attention_mask=m.attention_mask,
        attention_temperature=m.attention_temperature,
        attention_residual=m.attention_residual,
        attention_learn_temperature=m.attention_learn_temperature,
        attention_pooling=m.attention_pooling and attention,
        **{key: getattr(m, key) for key in _GRU_OPTIONS},
    )


def build_model_from_config(model_cfg: ModelConfig) -> nn.Module:
    """``build_model`` with every field of a ``ModelConfig``, checked the same way (``pretrained``
    weights are loaded by ``tdrag.models.pretrained``, which ``tdrag.train.fit`` calls)."""
    fields = {f.name: getattr(model_cfg, f.name) for f in dataclasses.fields(model_cfg) if f.name != "pretrained"}
    return build_model(**fields)


def load_model(path_or_run_dir: str | os.PathLike, device: str | torch.device = "cpu",
               which: str = "auto") -> tuple[nn.Module, Config]:
    """Build the model a checkpoint was trained with and load its weights.

    Args:
        path_or_run_dir: a ``.pt`` file, or a run dir (the checkpoint :func:`select_checkpoint`
            picks: best.pt only when chosen on held-out training clips, else last.pt).
        device: where to put the model.
        which: "auto", "best" or "last" (see :func:`select_checkpoint`).

    Returns:
        ``(model in eval mode on device, Config)``.
    """
    path = select_checkpoint(path_or_run_dir, which).path
    state = load_checkpoint(path, map_location="cpu")
    config = checkpoint_config(state, path)
    try:
        model = build_model_from_config(config.model)
    except ValueError as exc:
        raise CheckpointError(f"{path}: its config builds no model here ({exc})") from None
    load_weights(model, state, path, config.model.name)
    return model.to(device).eval(), config
