"""TDRAG: 3D ResNet-18 + 3D residual attention + GRU, and its ablation variants.

    x (B, 3, T, H, W) -> stem -> layer1 -> layer2 [+ attention] -> layer3 [+ attention]
      -> layer4 [+ attention] -> features (B, 8w, T', H', W') -> head -> logits (B, C)

Choices the paper's abstract leaves open (each a ``ModelConfig`` field):

* Temporal strides (1, 2, 1, 1) instead of r3d_18's (1, 2, 2, 2): at T = 16 the GRU sees
  T' = 8 steps (r3d_18's strides would leave it 2). Spatial strides stay r3d_18's.
* Attention after stages 2, 3 and 4 (stage 1 maps are low-level edges at 56x56, costly and
  uninformative); an attention block is the last module of its stage's Sequential, so
  ``model.layer4`` (the Grad-CAM layer analysis picks) outputs the attended features.
* The temporal head (:mod:`tdrag.models.gru_head`): GRU with 256 hidden units, one layer,
  dropout before the classifier; its input normalisation, readout over steps, pooled path beside
  the GRU, recurrent init, direction and branch dropout are ``ModelConfig`` fields
  (``gru_input_norm``, ``gru_readout``, ``gru_residual``, ``gru_init``, ``gru_bidirectional``,
  ``gru_branch_dropout``).
* ``causal_time``: off by default, each layer4 step sees the whole clip (centred temporal
  kernels), so the classifier on step s's hidden state is a readout of a GRU that has read s
  summaries of the *whole* clip. On, every temporal convolution of the backbone and of the
  attention branches pads only the past, and step s depends only on the keyframes up to the last
  one it covers (``(s + 1) * T / T_gru - 1``): its logits are what the model says having seen
  the clip up to there. Trained with ``TrainConfig.step_loss`` "mean" or "linear", those
  intermediate readouts are trained predictions, not by-products of the last step's loss.
* Attention mask function and temperature (``attention_mask``, ``attention_temperature``) and
  whether it has the residual floor (``attention_residual``: ``x * (1 + M)`` or ``x * M``): see
  :mod:`tdrag.models.attention`.
* ``attention_pooling``: layer4's attention map does not re-weight layer4's features; it weights
  the head's spatial pooling instead (each step's vector is ``sum M x / sum M``), so the map is
  exactly the evidence the classifier reads. Needs stage 4 in ``attention_stages``; the block is
  then ``model.pool_attention`` (after ``model.layer4``, not inside it).

Variants (``variant`` attribute): ``tdrag`` (all of it), ``tdrag_no_attention`` (no attention
modules or parameters at all), ``tdrag_no_gru`` (attention, then global average pool, dropout,
fc). All share the backbone and temporal strides so the ablation changes one thing at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tdrag.models.attention import ResidualAttention3d
from tdrag.models.gru_head import GRUHead, spatial_pool
from tdrag.models.inspection import ModelInspection
from tdrag.models.resnet3d import (
    check_input,
    init_resnet_weights,
    make_stages,
    make_stem,
    stage_channels,
)

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


class PoolHead(nn.Module):
    """Global average pool over (T, H, W) -> dropout -> ``fc``: ``(B, C, T, H, W) -> (B, num_classes)``.

    With ``pool_weights: (B, 1, T, H, W)`` (attention pooling) each step is pooled with them first.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None) -> torch.Tensor:
        if pool_weights is None:
            return self.fc(self.dropout(features.mean(dim=(2, 3, 4))))
        return self.fc(self.dropout(spatial_pool(features, pool_weights).mean(dim=1)))


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
        attention_mask, attention_temperature, attention_residual, attention_learn_temperature: the
            attention blocks' mask.
        attention_pooling: layer4's map weights the head's spatial pooling (see the module docstring).
        gru_input_norm, gru_readout, gru_residual, gru_init, gru_bidirectional, gru_branch_dropout: the
            temporal head (:class:`~tdrag.models.gru_head.GRUHead`).

    ``forward(x: (B, 3, T, H, W)) -> logits (B, num_classes)``; ``forward(x, return_inspection=True)``
    and :meth:`inspect` return the internals (a :class:`ModelInspection`) from the same pass.

    The options' types and ranges are checked once, by ``tdrag.config`` (``build_model`` goes through
    it); the constructor trusts them.
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
        attention_residual: bool = True,
        attention_pooling: bool = False,
        attention_learn_temperature: bool = False,
        gru_input_norm: str = "layernorm",
        gru_readout: str = "mean",
        gru_residual: bool = True,
        gru_init: str = "pytorch",
        gru_bidirectional: bool = False,
        gru_branch_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.temporal_strides = tuple(temporal_strides)
        self.attention_stages = tuple(sorted(attention_stages))
        self.attention_pooling = attention_pooling
        self.variant = variant
        self.causal_time = causal_time
        channels = stage_channels(width)
        self.stem = make_stem(width, causal=causal_time)
        stages = make_stages(width, self.temporal_strides, causal=causal_time)
        def block(number: int) -> ResidualAttention3d:
            return ResidualAttention3d(channels[number - 1], mask=attention_mask, temperature=attention_temperature,
                                       causal=causal_time, residual=attention_residual,
                                       learn_temperature=attention_learn_temperature)

        for number in self.attention_stages:
            if not (attention_pooling and number == 4):
                stages[number - 1].append(block(number))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # Attention pooling: layer4's map is computed after layer4 (which stays a plain stage, so its
        # output is what Grad-CAM on model.layer4 reads) and only weights the head's pooling.
        self.pool_attention = block(4) if attention_pooling else None
        self.head: GRUHead | PoolHead
        if use_gru:
            self.head = GRUHead(channels[3], num_classes, hidden=gru_hidden, layers=gru_layers, dropout=dropout,
                                input_norm=gru_input_norm, readout=gru_readout, residual=gru_residual, init=gru_init,
                                bidirectional=gru_bidirectional, causal=causal_time,
                                branch_dropout=gru_branch_dropout)
        else:
            self.head = PoolHead(channels[3], num_classes, dropout=dropout)
        init_resnet_weights(self, zero_init_residual)
        # The generic init above overwrote the attention branches' own (near-zero logits) init and
        # the head's (zero readout score and residual projection, GRU init).
        for m in self.modules():
            if isinstance(m, (ResidualAttention3d, GRUHead)):
                m.reset_parameters()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W) -> (B, 8w, T', H/16, W/16)``, the layer4 output (attended, unless layer4's
        map pools instead: then as layer4 leaves it)."""
        return self._run(x)[0]

    def _run(self, x: torch.Tensor, keep_maps: bool = False
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """The trunk: layer4's features, the attention maps per stage (when ``keep_maps``) and the
        head's pooling weights (None unless ``attention_pooling``).

        Without ``keep_maps`` each stage is called as a whole, so forward hooks on ``model.layerK``
        (Grad-CAM's) fire; with it the blocks run one by one to collect the maps."""
        check_input(x)
        maps: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for name in STAGE_NAMES:
            stage = getattr(self, name)
            if not keep_maps:
                x = stage(x)
                continue
            for module in stage:
                if isinstance(module, ResidualAttention3d):
                    x, maps[name] = module.forward_with_mask(x)
                else:
                    x = module(x)
        pool = None
        if self.pool_attention is not None:
            pool = self.pool_attention.mask(x)
            maps["layer4"] = pool
        return x, maps, pool

    def forward(self, x: torch.Tensor, return_inspection: bool = False) -> torch.Tensor | ModelInspection:
        """Logits ``(B, num_classes)``; with ``return_inspection`` the :class:`ModelInspection` of the
        same pass (training losses that need the step logits or the masks ask for it)."""
        if return_inspection:
            return self.inspect(x)
        features, _, pool = self._run(x)
        return self.head(features, pool)

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
        features, attention, pool = self._run(x, keep_maps=True)
        if isinstance(self.head, GRUHead):
            hidden, step_logits, weights, logits = self.head.forward_steps(features, pool)
            return ModelInspection(logits=logits, attention=attention, hidden_states=hidden, step_logits=step_logits,
                                   readout_weights=weights)
        return ModelInspection(logits=self.head(features, pool), attention=attention)


def step_readout_meaning(model: nn.Module, step_loss: str = "last") -> str:
    """What the GRU step readouts (``inspect(x).step_logits``) of ``model`` mean, in two or three sentences.

    It says what each step has seen (causal time, direction), what its logits are made of (the GRU
    state alone, or the pooled path plus the GRU's contribution) and whether they were trained as
    predictions (per-step loss) or only through the readout of the clip's logits.

    Args:
        model: a tdrag model (any variant).
        step_loss: the run's ``train.step_loss`` ("last", "mean" or "linear").
    """
    if not isinstance(model, TDRAG) or not isinstance(model.head, GRUHead):
        return "This model has no GRU: it gives one prediction per clip and no step readouts."
    head, span = model.head, model.step_frames
    if head.gru.bidirectional:
        seen = ("Bidirectional GRU: every step's state has read the whole sequence in both directions, so step s is "
                "not the clip so far.")
    elif model.causal_time:
        seen = (f"Causal time: step s depends only on keyframes 0..{span}(s+1)-1, so its logits are what the model "
                "says having seen the clip up to there.")
    else:
        seen = ("Not causal: every step of layer4 already sees the whole clip (centred temporal kernels), so step s is "
                "the GRU's state after s+1 summaries of the whole clip, not the clip so far.")
    pooled = ("the running mean of the pooled features up to that step" if head.causal else
              "the clip's pooled features (the same at every step)")
    made = (f"Each step's logits are the classifier on {pooled} plus the GRU state's contribution at that step."
            if head.residual else "Each step's logits are the classifier on the GRU state at that step.")
    if step_loss in ("mean", "linear"):
        trained = "They are trained predictions (the loss covered every step)."
    elif head.readout == "last":
        trained = "They are by-products: only the last step was trained to predict, earlier steps were never supervised."
    else:
        how = "average" if head.readout == "mean" else "attention-weighted average (readout_weights)"
        trained = (f"The clip's prediction is their {how}; a single step was trained only as part of it, not as a "
                   "prediction on its own.")
    return f"{seen} {made} {trained}"
