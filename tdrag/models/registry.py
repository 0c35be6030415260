"""TDRAG and its baselines by name: ``build_model`` (a new network) and ``load_model`` (a trained one).

    model = build_model("tdrag", num_classes=7, width=16)
    logits = model(x)                 # x: (B, 3, T, H, W) float -> (B, 7)
    seen = model.inspect(x)           # ModelInspection: logits, attention, hidden_states, step_logits
    model, config = load_model("runs/demo/run")   # the checkpoint select_checkpoint picks, in eval mode

Variants: ``r3d18`` (torchvision's r3d_18, same layers and parameter count), ``tdrag``,
``tdrag_no_attention``, ``tdrag_no_gru``. Options are ``ModelConfig``'s fields; each variant
ignores those that do not apply to it (r3d18 keeps r3d_18's temporal strides and has no attention,
GRU or dropout; no_attention ignores attention_stages; no_gru ignores the GRU sizes).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from tdrag.config import Config, ModelConfig
from tdrag.models.resnet3d import R3D18
from tdrag.models.tdrag import TDRAG
from tdrag.runs.checkpoints import (
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    load_weights,
    select_checkpoint,
)

MODEL_NAMES: tuple[str, ...] = ("r3d18", "tdrag", "tdrag_no_attention", "tdrag_no_gru")

# ModelConfig's option fields (name and num_classes are build_model's own arguments), plus
# zero_init_residual, a library-only option (default off keeps r3d_18's init).
_OPTIONS = ("width", "temporal_strides", "attention_stages", "gru_hidden", "gru_layers", "dropout", "causal_time",
            "attention_mask", "attention_temperature", "zero_init_residual")


def build_model(name: str, num_classes: int = 7, **options: Any) -> nn.Module:
    """Build a model variant by name.

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: classifier outputs.
        **options: width, temporal_strides, attention_stages, gru_hidden, gru_layers, dropout,
            causal_time, attention_mask, attention_temperature (see ``ModelConfig``),
            zero_init_residual.

    Raises:
        ValueError: unknown name, unknown option, or an option out of range.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(f"build_model({name!r}): unknown option(s) {unknown} (known: {', '.join(_OPTIONS)})")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"build_model({name!r}): num_classes must be a positive integer, got {num_classes!r}")
    defaults = ModelConfig()

    def get(key: str) -> Any:
        # Unset options take ModelConfig's defaults; zero_init_residual is not a config field.
        return options.get(key, getattr(defaults, key, False))

    if name == "r3d18":
        return R3D18(num_classes=num_classes, width=get("width"), zero_init_residual=get("zero_init_residual"))
    if name not in MODEL_NAMES:
        raise ValueError(f"build_model: unknown model {name!r} (known: {', '.join(MODEL_NAMES)})")
    return TDRAG(
        num_classes=num_classes,
        width=get("width"),
        temporal_strides=get("temporal_strides"),
        attention_stages=() if name == "tdrag_no_attention" else get("attention_stages"),
        use_gru=name != "tdrag_no_gru",
        gru_hidden=get("gru_hidden"),
        gru_layers=get("gru_layers"),
        dropout=get("dropout"),
        zero_init_residual=get("zero_init_residual"),
        variant=name,
        causal_time=get("causal_time"),
        attention_mask=get("attention_mask"),
        attention_temperature=get("attention_temperature"),
    )


def build_model_from_config(model_cfg: ModelConfig) -> nn.Module:
    """``build_model`` with every field of a ``ModelConfig`` (``pretrained`` weights are loaded by
    ``tdrag.models.pretrained``, which the trainer calls)."""
    return build_model(
        model_cfg.name,
        num_classes=model_cfg.num_classes,
        width=model_cfg.width,
        temporal_strides=model_cfg.temporal_strides,
        attention_stages=model_cfg.attention_stages,
        gru_hidden=model_cfg.gru_hidden,
        gru_layers=model_cfg.gru_layers,
        dropout=model_cfg.dropout,
        causal_time=model_cfg.causal_time,
        attention_mask=model_cfg.attention_mask,
        attention_temperature=model_cfg.attention_temperature,
    )


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
