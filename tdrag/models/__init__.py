"""TDRAG and its baselines; ``build_model(name, num_classes, **options)`` is the entry point.

    model = build_model("tdrag", num_classes=7, width=16)
    logits = model(x)                 # x: (B, 3, T, H, W) float -> (B, 7)
    seen = model.inspect(x)           # ModelInspection: logits, attention, hidden_states, step_logits

Variants: ``r3d18`` (torchvision's r3d_18, same layers and parameter count), ``tdrag``,
``tdrag_no_attention``, ``tdrag_no_gru``, and ``tdrag_trunk`` (TDRAG's backbone with its temporal
strides, neither attention nor GRU: a pooled head, as r3d18; it isolates what the strides do). Options are ``ModelConfig``'s fields; each variant
ignores those that do not apply to it (r3d18 keeps r3d_18's temporal strides and has no attention,
GRU or dropout; no_attention ignores attention_stages; no_gru ignores the GRU sizes).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from tdrag.config import ModelConfig
from tdrag.models.attention import ResidualAttention3d, upsample_attention
from tdrag.models.gru_head import GRUHead, gru_branch_off
from tdrag.models.inspection import ModelInspection
from tdrag.models.resnet3d import R3D18
from tdrag.models.tdrag import TDRAG, step_readout_meaning

MODEL_NAMES: tuple[str, ...] = ("r3d18", "tdrag", "tdrag_no_attention", "tdrag_no_gru", "tdrag_trunk")

# ModelConfig's option fields (name and num_classes are build_model's own arguments), plus
# zero_init_residual, a library-only option (default off keeps r3d_18's init).
_OPTIONS = ("width", "temporal_strides", "attention_stages", "gru_hidden", "gru_layers", "dropout", "causal_time",
            "attention_mask", "attention_temperature", "attention_residual", "attention_pooling",
            "attention_learn_temperature", "gru_input_norm",
            "gru_readout", "gru_residual", "gru_init", "gru_bidirectional", "zero_init_residual")
#: Options that only the models with a GRU use.
_GRU_OPTIONS = ("gru_input_norm", "gru_readout", "gru_residual", "gru_init", "gru_bidirectional")


def build_model(name: str, num_classes: int = 7, **options: Any) -> nn.Module:
    """Build a model variant by name.

    Args:
        name: one of :data:`MODEL_NAMES`.
        num_classes: classifier outputs.
        **options: width, temporal_strides, attention_stages, gru_hidden, gru_layers, dropout,
            causal_time, attention_mask, attention_temperature, attention_residual,
            attention_pooling, attention_learn_temperature, gru_input_norm, gru_readout, gru_residual, gru_init,
            gru_bidirectional (see ``ModelConfig``), zero_init_residual.

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
        attention_stages=() if name in ("tdrag_no_attention", "tdrag_trunk") else get("attention_stages"),
        use_gru=name not in ("tdrag_no_gru", "tdrag_trunk"),
        gru_hidden=get("gru_hidden"),
        gru_layers=get("gru_layers"),
        dropout=get("dropout"),
        zero_init_residual=get("zero_init_residual"),
        variant=name,
        causal_time=get("causal_time"),
        attention_mask=get("attention_mask"),
        attention_temperature=get("attention_temperature"),
        attention_residual=get("attention_residual"),
        attention_learn_temperature=get("attention_learn_temperature"),
        attention_pooling=get("attention_pooling") and name not in ("tdrag_no_attention", "tdrag_trunk"),
        **{key: get(key) for key in _GRU_OPTIONS},
    )


def build_model_from_config(model_cfg: ModelConfig) -> nn.Module:
    """``build_model`` with every field of a ``ModelConfig`` (``pretrained`` weights are loaded by
    ``tdrag.models.pretrained``, which the trainer calls)."""
    options = {key: getattr(model_cfg, key) for key in _OPTIONS if hasattr(model_cfg, key)}
    return build_model(model_cfg.name, num_classes=model_cfg.num_classes, **options)


__all__ = [
    "MODEL_NAMES",
    "GRUHead",
    "ModelInspection",
    "R3D18",
    "ResidualAttention3d",
    "TDRAG",
    "build_model",
    "build_model_from_config",
    "gru_branch_off",
    "step_readout_meaning",
    "upsample_attention",
]
