"""TDRAG and its baselines by name: ``build_model`` (a new network) and ``load_model`` (a trained one).

    model = build_model("tdrag", num_classes=7, width=16)
    logits = model(x)                 # x: (B, 3, T, H, W) float -> (B, 7)
    seen = model.inspect(x)           # ModelInspection: logits, attention, hidden_states, step_logits
    model, config = load_model("runs/demo/run")   # the checkpoint select_checkpoint picks, in eval mode

Variants: ``r3d18`` (torchvision's r3d_18, same layers and parameter count), ``tdrag``,
``tdrag_no_attention``, ``tdrag_no_gru``, and ``tdrag_trunk`` (TDRAG's backbone with its temporal
strides, neither attention nor GRU: a pooled head, as r3d18; it isolates what the strides do).
Options are ``ModelConfig``'s fields (``tdrag.config``, where each is documented and its default
written), checked there as a config file's are; each variant ignores those that do not apply to
it (r3d18 keeps r3d_18's temporal strides and has no attention, GRU or dropout; no_attention and
trunk ignore ``attention``; no_gru and trunk read only ``head.dropout``). The attention and head
designs have registries of their own (``tdrag.models.tdrag.ATTENTIONS``,
``tdrag.models.tdrag.HEADS``).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn

from tdrag.config import CONFIG_VERSION, Config, ConfigError, ModelConfig, config_from_dict
from tdrag.models.resnet3d import R3D18
from tdrag.models.tdrag import TDRAG, VARIANTS
from tdrag.runs.checkpoints import (
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    load_weights,
    select_checkpoint,
)

#: The variants by name (config's ``model.name`` choices; tests/test_config.py ties the two).
MODEL_NAMES: tuple[str, ...] = ("r3d18", *VARIANTS)


def build_model(name: str, *, zero_init_residual: bool = False, **options: Any) -> nn.Module:
    """Build a model variant by name.

    Args:
        name: one of :data:`MODEL_NAMES`.
        zero_init_residual: start each residual block's last BatchNorm at zero (a library-only
            option; off keeps r3d_18's init).
        **options: ``ModelConfig``'s other fields as a config file's model section gives them
            (``num_classes=5, width=16, head={"hidden": 64}``; the keys of config format 1, such
            as ``gru_hidden=64``, are read too); unset ones take its defaults.

    Raises:
        ConfigError (a ValueError): an unknown name or option, or a value of the wrong type or
            range, named as its config key (``model.width: ...``). The options are checked by
            ``tdrag.config``, the one place they are checked, exactly as a config file's.
    """
    if "pretrained" in options:
        raise ConfigError(f"build_model({name!r}): model.pretrained weights are loaded into a built model by "
                          "tdrag.models.pretrained.load_pretrained")
    source = f"build_model({name!r})"
    cfg = config_from_dict({"model": {"name": name, **options}}, source=source).model
    return _build(cfg, zero_init_residual=zero_init_residual, source=source)


def build_model_from_config(model_cfg: ModelConfig) -> nn.Module:
    """The model of a ``ModelConfig``, checked as :func:`build_model`'s options are (``pretrained``
    weights are loaded by ``tdrag.models.pretrained``, which ``tdrag.train.fit`` calls)."""
    fields = {k: v for k, v in dataclasses.asdict(model_cfg).items() if k != "pretrained"}
    source = f"build_model({model_cfg.name!r})"
    cfg = config_from_dict({"version": CONFIG_VERSION, "model": fields}, source=source).model
    return _build(cfg, zero_init_residual=False, source=source)


def _build(cfg: ModelConfig, zero_init_residual: bool, source: str) -> nn.Module:
    """The network of a checked ``cfg``; ``source`` names the caller in errors."""
    if cfg.name == "r3d18":
        return R3D18(num_classes=cfg.num_classes, width=cfg.width, zero_init_residual=zero_init_residual)
    try:
        return TDRAG(cfg, zero_init_residual=zero_init_residual)
    except ValueError as exc:  # designs that cannot be combined (tdrag.models.designs)
        raise ConfigError(f"{exc} (in {source})") from None


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
