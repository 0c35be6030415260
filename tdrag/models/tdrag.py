"""TDRAG: 3D ResNet-18 + 3D residual attention + GRU, and its ablation variants.

    x (B, 3, T, H, W) -> stem -> layer1 -> layer2 [+ attention] -> layer3 [+ attention]
      -> layer4 [+ attention] -> features (B, 8w, T', H', W') -> head -> logits (B, C)

Choices the paper's abstract leaves open (each a ``ModelConfig`` field):

* Temporal strides (1, 2, 1, 1) instead of r3d_18's (1, 2, 2, 2): at T = 16 the GRU sees
  T' = 8 steps (r3d_18's strides would leave it 2). Spatial strides stay r3d_18's.
* Attention after stages 2, 3 and 4 (stage 1 maps are low-level edges at 56x56, costly and
  uninformative); an attention block is the last module of its stage's Sequential, so
  ``model.layer4`` (the Grad-CAM layer analysis picks) outputs the attended features.
* GRU with 256 hidden units, one layer, dropout 0.5 before the classifier; the prediction is the
  classifier on the last step's hidden state.
* ``causal_time``: off by default, each layer4 step sees the whole clip (centred temporal
  kernels), so the classifier on step s's hidden state is a readout of a GRU that has read s
  summaries of the *whole* clip. On, every temporal convolution of the backbone and of the
  attention branches pads only the past, and step s depends only on the keyframes up to the last
  one it covers (``(s + 1) * T / T_gru - 1``): its logits are what the model says having seen
  the clip up to there. Trained with ``TrainConfig.step_loss`` "mean" or "linear", those
  intermediate readouts are trained predictions, not by-products of the last step's loss.
* Attention mask function and temperature (``attention_mask``, ``attention_temperature``):
  see :mod:`tdrag.models.attention`.

Variants (``variant`` attribute): ``tdrag`` (all of it), ``tdrag_no_attention`` (no attention
modules or parameters at all), ``tdrag_no_gru`` (attention, then global average pool, dropout,
fc). All share the backbone and temporal strides so the ablation changes one thing at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tdrag.models.attention import ResidualAttention3d
from tdrag.models.gru_head import GRUHead
from tdrag.models.inspection import ModelInspection
from tdrag.models.resnet3d import (
    check_input,
    check_temporal_strides,
    check_width,
    init_resnet_weights,
    make_stages,
    make_stem,
    stage_channels,
)

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


class PoolHead(nn.Module):
    """Global average pool over (T, H, W) -> dropout -> ``fc``: ``(B, C, T, H, W) -> (B, num_classes)``."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features.mean(dim=(2, 3, 4))))


def _check_options(attention_stages: Sequence[int], gru_hidden: int, gru_layers: int, dropout: float, num_classes: int) -> tuple[int, ...]:
    stages = tuple(attention_stages)
    if any(isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 4 for s in stages) or len(set(stages)) != len(stages):
        raise ValueError(f"model option attention_stages: expected distinct stage numbers in 1..4, got {attention_stages!r}")
    for name, value in (("gru_hidden", gru_hidden), ("gru_layers", gru_layers), ("num_classes", num_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"model option {name}: expected a positive integer, got {value!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"model option dropout: expected a probability in [0, 1), got {dropout!r}")
    return tuple(sorted(stages))


class TDRAG(nn.Module):
    """TDRAG and its ablations.

    Args:
        num_classes: classifier outputs (7 for DFEW).
        width: channels of stage 1 (64 as in r3d_18; 16 for CPU demos).
        temporal_strides: temporal stride of stages 1..4.
        attention_stages: stages (1..4) followed by a :class:`ResidualAttention3d`; () for none.
        use_gru: GRU head (True) or global average pool head (False).
        gru_hidden, gru_layers: GRU size (ignored without GRU).
        dropout: dropout before the classifier.
        zero_init_residual: zero the last BN gamma of every BasicBlock (off by default).
        variant: the name reported by ``model.variant``.
        causal_time: pad every temporal convolution only in the past (see the module docstring).
        attention_mask, attention_temperature: the attention blocks' mask function.

    ``forward(x: (B, 3, T, H, W)) -> logits (B, num_classes)``; ``forward(x, return_inspection=True)``
    and :meth:`inspect` return the internals (a :class:`ModelInspection`) from the same pass.
    """

    def __init__(
        self,
        num_classes: int = 7,
        width: int = 64,
        temporal_strides: Sequence[int] = (1, 2, 1, 1),
        attention_stages: Sequence[int] = (2, 3, 4),
        use_gru: bool = True,
        gru_hidden: int = 256,
        gru_layers: int = 1,
        dropout: float = 0.5,
        zero_init_residual: bool = False,
        variant: str = "tdrag",
        causal_time: bool = False,
        attention_mask: str = "sigmoid",
        attention_temperature: float = 1.0,
    ) -> None:
        super().__init__()
        check_width(width)
        self.temporal_strides = check_temporal_strides(temporal_strides)
        self.attention_stages = _check_options(attention_stages, gru_hidden, gru_layers, dropout, num_classes)
        if not isinstance(causal_time, bool):
            raise ValueError(f"model option causal_time: expected true/false, got {causal_time!r}")
        self.variant = variant
        self.causal_time = causal_time
        channels = stage_channels(width)
        self.stem = make_stem(width, causal=causal_time)
        stages = make_stages(width, self.temporal_strides, causal=causal_time)
        for number in self.attention_stages:
            stages[number - 1].append(ResidualAttention3d(channels[number - 1], mask=attention_mask,
                                                          temperature=attention_temperature, causal=causal_time))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head: GRUHead | PoolHead
        if use_gru:
            self.head = GRUHead(channels[3], num_classes, hidden=gru_hidden, layers=gru_layers, dropout=dropout)
        else:
            self.head = PoolHead(channels[3], num_classes, dropout=dropout)
        init_resnet_weights(self, zero_init_residual)
        # The generic init above overwrote the attention branches' own (near-zero logits) init.
        for m in self.modules():
            if isinstance(m, ResidualAttention3d):
                m.reset_parameters()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W) -> (B, 8w, T', H/16, W/16)``, the attended layer4 output."""
        check_input(x)
        x = self.stem(x)
        for name in STAGE_NAMES:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor, return_inspection: bool = False) -> torch.Tensor | ModelInspection:
        """Logits ``(B, num_classes)``; with ``return_inspection`` the :class:`ModelInspection` of the
        same pass (training losses that need the step logits or the masks ask for it)."""
        if return_inspection:
            return self.inspect(x)
        return self.head(self.features(x))

    @property
    def step_frames(self) -> int:
        """Keyframes per GRU step: the product of the temporal strides (step s covers keyframes
        ``s * step_frames`` .. ``(s + 1) * step_frames - 1``)."""
        frames = 1
        for stride in self.temporal_strides:
            frames *= stride
        return frames

    def inspect(self, x: torch.Tensor) -> ModelInspection:
        """Logits, attention maps per stage, GRU hidden states and per-step logits (see ModelInspection).

        Computes the same values as ``forward`` (in eval mode, equal to ``model(x)``), keeping the graph.
        """
        check_input(x)
        attention: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for name in STAGE_NAMES:
            for module in getattr(self, name):
                if isinstance(module, ResidualAttention3d):
                    x, attention[name] = module.forward_with_mask(x)
                else:
                    x = module(x)
        if isinstance(self.head, GRUHead):
            hidden, step_logits = self.head.forward_steps(x)
            return ModelInspection(logits=step_logits[:, -1], attention=attention, hidden_states=hidden, step_logits=step_logits)
        return ModelInspection(logits=self.head(x), attention=attention)


def step_readout_meaning(model: nn.Module, step_loss: str = "last") -> str:
    """One sentence saying what the GRU step readouts (``inspect(x).step_logits``) of ``model`` mean.

    Args:
        model: a tdrag model (any variant).
        step_loss: the run's ``train.step_loss`` ("last", "mean" or "linear").
    """
    if not isinstance(model, TDRAG) or not isinstance(model.head, GRUHead):
        return "This model has no GRU: it gives one prediction per clip and no step readouts."
    span = model.step_frames
    trained = ("trained predictions (the loss covered every step)" if step_loss in ("mean", "linear") else
               "by-products: only the last step was trained to predict, earlier steps' logits were never supervised")
    if model.causal_time:
        return (f"Causal time: step s depends only on keyframes 0..{span}(s+1)-1, so its logits are what the model "
                f"says having seen the clip up to there; they are {trained}.")
    return ("Not causal: every step of layer4 already sees the whole clip (centred temporal kernels), so step s is the "
            f"GRU's state after s+1 summaries of the whole clip, not the clip so far; the step logits are {trained}.")
