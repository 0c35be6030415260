"""TDRAG: 3D ResNet-18 + 3D residual attention + GRU, and its ablation variants.

    x (B, 3, T, H, W) -> stem -> layer1 -> layer2 [+ attention] -> layer3 [+ attention]
      -> layer4 [+ attention] -> features (B, 8w, T', H', W') -> head -> logits (B, C)

``TDRAG(cfg)`` takes the model's config (:class:`tdrag.config.ModelConfig`, where every option and
its default is written, once); the attention blocks get ``cfg.attention`` and the head
``cfg.head``, each built from the design its registry names (``ATTENTIONS``, ``HEADS``). Choices
the paper's abstract leaves open:

* Temporal strides (1, 2, 1, 1) instead of r3d_18's (1, 2, 2, 2): at T = 16 the GRU sees
  T' = 8 steps (r3d_18's strides would leave it 2). Spatial strides stay r3d_18's.
* Attention after stages 2, 3 and 4 (stage 1 maps are low-level edges at 56x56, costly and
  uninformative); an attention block is the last module of its stage's Sequential, so
  ``model.layer4`` (the Grad-CAM layer analysis picks) outputs the attended features. The design
  of the block: :mod:`tdrag.models.attention`. A design whose layer4 map pools (``"pooling"``)
  puts that block after ``model.layer4`` as ``model.pool_attention``, weighting the head's spatial
  pooling (each step's vector is ``sum M x / sum M``) instead of layer4's features.
* The temporal head (:mod:`tdrag.models.gru_head`): LayerNorm -> GRU with 256 hidden units, one
  layer, a pooled path beside it, dropout before the classifier, the mean of the step logits.
* ``causal_time``: off by default, each layer4 step sees the whole clip (centred temporal
  kernels), so the classifier on step s's hidden state is a readout of a GRU that has read s
  summaries of the *whole* clip. On, every temporal convolution of the backbone and of the
  attention branches pads only the past, and step s depends only on the keyframes up to the last
  one it covers (``(s + 1) * T / T_gru - 1``): its logits are what the model says having seen
  the clip up to there. Trained with ``TrainConfig.step_loss`` "mean" or "linear", those
  intermediate readouts are trained predictions, not by-products of the last step's loss.

Variants (``variant`` attribute, :data:`VARIANTS`): ``tdrag`` (all of it), ``tdrag_no_attention``
(no attention modules or parameters at all), ``tdrag_no_gru`` (attention, then global average
pool, dropout, fc), ``tdrag_trunk`` (neither). All share the backbone and temporal strides so the
ablation changes one thing at a time.
"""

from __future__ import annotations

import torch
from torch import nn

from tdrag.config import HeadConfig, ModelConfig
from tdrag.models.attention import ATTENTIONS, ResidualAttention3d
from tdrag.models.designs import design_class
from tdrag.models.gru_head import HEADS, GRUHead, spatial_pool
from tdrag.models.inspection import ModelInspection
from tdrag.models.resnet3d import (
    check_input,
    init_resnet_weights,
    make_stages,
    make_stem,
    stage_channels,
)

STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


#: The TDRAG variants by name: (attention blocks, GRU head). Without a GRU the head pools.
VARIANTS: dict[str, tuple[bool, bool]] = {
    "tdrag": (True, True), "tdrag_no_attention": (False, True), "tdrag_no_gru": (True, False),
    "tdrag_trunk": (False, False),
}


class PoolHead(nn.Module):
    """Global average pool over (T, H, W) -> dropout -> ``fc``: ``(B, C, T, H, W) -> (B, num_classes)``.

    With ``pool_weights: (B, 1, T, H, W)`` (attention pooling) each step is pooled with them first.
    Of the head's config it reads ``dropout``; ``causal`` changes nothing (the mean is the clip's).
    """

    def __init__(self, in_channels: int, num_classes: int, cfg: HeadConfig, causal: bool) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None) -> torch.Tensor:
        if pool_weights is None:
            return self.fc(self.dropout(features.mean(dim=(2, 3, 4))))
        return self.fc(self.dropout(spatial_pool(features, pool_weights).mean(dim=1)))


class TDRAG(nn.Module):
    """TDRAG and its ablations (see the module docstring).

    Args:
        cfg: the model's config; ``cfg.name`` is one of :data:`VARIANTS` (``model.variant``). Its
            values are checked once, by ``tdrag.config`` (``build_model`` goes through it); the
            constructor trusts them.
        zero_init_residual: zero the last BN gamma of every BasicBlock (off keeps r3d_18's init).

    ``forward(x: (B, 3, T, H, W)) -> logits (B, num_classes)``; ``forward(x, return_inspection=True)``
    and :meth:`inspect` return the internals (a :class:`ModelInspection`) from the same pass.
    """

    def __init__(self, cfg: ModelConfig, zero_init_residual: bool = False) -> None:
        super().__init__()
        with_attention, with_gru = VARIANTS[cfg.name]
        self.variant = cfg.name
        self.temporal_strides = tuple(cfg.temporal_strides)
        self.attention_stages = tuple(sorted(cfg.attention.stages)) if with_attention else ()
        self.causal_time = cfg.causal_time
        channels = stage_channels(cfg.width)
        self.stem = make_stem(cfg.width, causal=cfg.causal_time)
        stages = make_stages(cfg.width, self.temporal_strides, causal=cfg.causal_time)
        block = design_class(ATTENTIONS, cfg.attention.design, "model.attention.design")
        # A pooling design's layer4 map is computed after layer4 (which stays a plain stage, so its
        # output is what Grad-CAM on model.layer4 reads) and only weights the head's pooling.
        pools = block.pools and 4 in self.attention_stages
        for number in self.attention_stages:
            if not (pools and number == 4):
                stages[number - 1].append(block(channels[number - 1], cfg.attention, causal=cfg.causal_time))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool_attention = block(channels[3], cfg.attention, causal=cfg.causal_time) if pools else None
        head = design_class(HEADS, cfg.head.design, "model.head.design") if with_gru else PoolHead
        self.head: GRUHead | PoolHead = head(channels[3], cfg.num_classes, cfg.head, causal=cfg.causal_time)
        init_resnet_weights(self, zero_init_residual)
        # The generic init above overwrote the attention branches' own (near-zero logits) init and
        # the head's (zero residual projection and readout score, GRU init).
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
        head's pooling weights (None unless the attention design pools).

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
