"""TDRAG, the chosen model in one file: 3D ResNet-18 + 3D residual attention + GRU, and its ablations.

    x (B, 3, T, H, W) -> stem -> layer1 -> layer2 [+ attention] -> layer3 [+ attention]
      -> layer4 [+ attention] -> features (B, 8w, T', H', W') -> head -> logits (B, C)

``TDRAG(cfg)`` takes the model's config (:class:`tdrag.config.ModelConfig`, where every option and
its default is written, once). This file holds every part of the chosen design: the trunk's
layout (its blocks are r3d_18's, :mod:`tdrag.models.resnet3d`, shared with the ``r3d18``
baseline), the attention block and the temporal head. The designs kept for comparison are
one-change subclasses of these parts, registered beside them by name
(:mod:`tdrag.models.attention_designs`, :mod:`tdrag.models.head_designs`); ``model.attention.design``
and ``model.head.design`` pick one from :data:`ATTENTIONS` / :data:`HEADS`. The choices the
paper's abstract leaves open, and ours:

**Trunk** (``model.width``, ``model.temporal_strides``, ``model.causal_time``, ``model.local_time``)

* Temporal strides (1, 2, 1, 1) instead of r3d_18's (1, 2, 2, 2): at T = 16 the GRU sees
  T' = 8 steps (r3d_18's strides would leave it 2). Spatial strides stay r3d_18's.
* ``causal_time`` (off): every temporal convolution of the trunk and of the attention branches
  pads only the past, so step s depends only on the keyframes up to the last one it covers
  (``(s + 1) * T / T_gru - 1``) and its logits are what the model says having seen the clip up to
  there (trained as predictions with ``TrainConfig.step_loss`` "mean" or "linear"). Off, each
  layer4 step sees the whole clip (centred kernels), so step s's readout is a GRU that has read s
  summaries of the *whole* clip.
* ``local_time`` (off): every temporal convolution reads only the keyframes of its own step
  (kernel 1, or the stride's length where a stage strides time), so layer4's step s depends on
  keyframes ``s * step_frames`` .. ``(s + 1) * step_frames - 1`` alone: the trunk is a bag of
  per-step features whose order only the head can read (a model without a GRU cannot read it).

**Attention** (``model.attention``: ``stages``, ``temperature``; :class:`ResidualAttention3d`, "residual")

The paper names "3D residual attention blocks" but only its abstract is public, so the block is
ours, after Wang et al. (CVPR 2017, "Residual Attention Network"), cut to one hourglass level and
a spatial map:

* **Where**: one block after the last BasicBlock of each stage listed (default 2, 3, 4; stage 1's
  maps are low-level edges at 56x56, costly and uninformative). The trunk is the stage itself; the
  block only re-weights it, so r3d_18 weights still fit, and as the last module of its stage's
  Sequential, ``model.layer4`` (Grad-CAM's layer) outputs the attended features.
* **Mask branch** (reduction r = 4, at least 8 channels): ``1x1x1 conv C->C/r + BN + ReLU`` ->
  ``max-pool (1, 3, 3) stride (1, 2, 2)`` (a wider spatial view; time is not pooled, so there is
  one map per step) -> ``3x3x3 conv + BN + ReLU`` (the 3-frame kernel lets motion shape the mask;
  past-padded under causal time, 1x3x3 under local time) -> ``1x1x1 conv C/r->1`` (mask logits)
  -> trilinear upsampling back to (T', H', W') -> divided by the temperature tau -> M =
  sigmoid(logits / tau), each place on its own. M: (B, 1, T', H', W'), shared by all channels.
* **Residual**: ``out = x * (1 + M)`` with M in (0, 1): a useless mask scales features by at most
  2 and never erases them.
* **Init**: the logits conv starts at N(0, 0.01) and zero bias, so M starts near 0.5 (a uniform
  gain the next BN absorbs) and gradients reach every layer of the branch from the first step.

**Temporal head** (``model.head``: ``hidden``, ``layers``, ``dropout``, ``branch_dropout``;
:class:`GRUHead`, "gru")

The head reads layer4's features as a sequence of T' per-step vectors (each step's spatial mean)
and turns them into logits. The first head (the last state of a GRU on raw pooled features) did
not train; this one answers each cause (:mod:`tdrag.models.head_designs` tells that story):

* **LayerNorm** on each step's vector before the GRU (one layer, 256 hidden units), so the gates
  see inputs of a fixed scale whatever the trunk does.
* **A pooled path beside the GRU** (VIBE's residual GRU): step s's clip vector is ``z_s = mean_t
  f_t + P h_s``, the time-mean of the pooled features plus a projection ``P`` of the GRU's state,
  read by the classifier. ``P`` starts at zero, so an untrained TDRAG *is* ``tdrag_no_gru`` and the
  GRU can only add to a head that trains (under causal time the pooled part is the running mean
  up to s). :func:`gru_branch_off` switches the branch off to measure what the GRU contributes.
* **The mean readout**: the classifier runs on every step and the clip's logits are the mean of
  the step logits (``sum_s w_s step_logits_s`` with the readout weights ``w``).
* **Branch dropout** p: in training each clip keeps ``P h_s`` with probability 1 - p (scaled by
  1 / (1 - p)) and otherwise reads the pooled path alone, so the pooled path must classify by
  itself and the GRU learns what it adds (benchmarks/RESULTS.md, "GRU branch dropout").

**Variants** (``model.name``, :data:`VARIANTS`): ``tdrag`` (all of it), ``tdrag_no_attention`` (no
attention modules or parameters), ``tdrag_no_gru`` (attention, then global average pool, dropout,
fc: :class:`PoolHead`), ``tdrag_trunk`` (neither). All share the trunk, so an ablation changes one
thing at a time.

``model.num_classes`` sizes the classifier; ``model.pretrained`` names weights that
:mod:`tdrag.models.pretrained` loads into a built model's trunk (``tdrag.models.registry`` does).

**Fast path**: no Python loop over time and no host sync; the attention block is Conv3d, BN, ReLU,
max-pool, interpolate, sigmoid and a multiply, all fine in channels_last_3d and under bf16
autocast (the sigmoid in float32, so the maps keep their precision). The GRU gets a contiguous
batch-first input so cuDNN runs the sequence in one call; it runs in float32 (a recurrence
accumulates rounding error) and outside torch.compile (dynamo does not trace RNN modules: the
whole head, well under 1 % of the FLOPs, is the one intended graph break).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from tdrag.config import AttentionConfig, HeadConfig, ModelConfig
from tdrag.models.designs import design_class
from tdrag.models.inspection import ModelInspection
from tdrag.models.resnet3d import (
    INPUT_LAYER,
    check_input,
    init_resnet_weights,
    make_conv3d,
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


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32 when autocast made it half or bfloat16; a float64 model's tensors stay float64
    (exactness checks run the whole model in double)."""
    return t if t.dtype == torch.float64 else t.float()


def spatial_pool(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-step vectors ``(B, T, C)`` of ``features: (B, C, T, H, W)``: the spatial mean, or with
    ``weights: (B, 1, T, H, W)`` (non-negative) the weighted mean ``sum w x / sum w`` per step."""
    if weights is None:
        # (B, C, T) -> (B, T, C); already contiguous when the features are channels_last_3d.
        return features.mean(dim=(3, 4)).transpose(1, 2)
    w = weights.to(features.dtype)
    total = w.sum(dim=(3, 4)).clamp_min(torch.finfo(w.dtype).tiny)  # (B, 1, T)
    return ((features * w).sum(dim=(3, 4)) / total).transpose(1, 2)


class ResidualAttention3d(nn.Module):
    """The chosen block ("residual"): spatial residual attention for one stage's output.

    Args:
        channels: C, the stage's output channels.
        cfg: the model's attention part (``cfg.temperature`` divides the mask logits).
        time: how the context conv treats time, "centred", "causal" (past padding only) or "local"
            (step t alone); see :func:`tdrag.models.resnet3d.make_conv3d`.

    ``forward(x: (B, C, T, H, W)) -> (B, C, T, H, W)``; :meth:`forward_with_mask` also returns
    M: (B, 1, T, H, W) float32. The designs kept for comparison (:data:`ATTENTIONS`) are its
    subclasses, each overriding one of :meth:`scale`, :meth:`mask_function`, :meth:`weigh` or
    :attr:`pools`.
    """

    #: Channel reduction r of the mask branch, and its floor (small CPU models).
    reduction = 4
    min_channels = 8
    #: Whether layer4's block weights the head's spatial pooling instead of re-weighting layer4.
    pools = False

    def __init__(self, channels: int, cfg: AttentionConfig, time: str = "centred") -> None:
        super().__init__()
        self.temperature = float(cfg.temperature)
        hidden = max(channels // self.reduction, self.min_channels)
        self.reduce = nn.Sequential(
            nn.Conv3d(channels, hidden, kernel_size=1, bias=False), nn.BatchNorm3d(hidden), nn.ReLU(inplace=True)
        )
        self.pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.context = nn.Sequential(
            make_conv3d(hidden, hidden, kernel_size=3, padding=1, time=time), nn.BatchNorm3d(hidden),
            nn.ReLU(inplace=True),
        )
        self.logits = nn.Conv3d(hidden, 1, kernel_size=1, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming for the hidden convs, BN (1, 0), and a near-zero logits conv (M ~ 0.5 at start)."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.logits.weight, 0.0, 0.01)
        nn.init.zeros_(self.logits.bias)

    def scale(self, logits: torch.Tensor) -> torch.Tensor:
        """The mask logits divided by the temperature tau."""
        return logits / self.temperature

    def mask_function(self, logits: torch.Tensor) -> torch.Tensor:
        """M = sigmoid(logits): each place on its own, in (0, 1)."""
        return torch.sigmoid(logits)

    def weigh(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``x * (1 + M)``: a useless mask scales features by at most 2 and never erases them."""
        return x * (1.0 + m).to(x.dtype)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """M: (B, 1, T, H, W) float32 in (0, 1] for ``x: (B, C, T, H, W)``."""
        m = self.logits(self.context(self.pool(self.reduce(x))))
        # Upsample the one-channel logits, not C/r channels: cheaper, and smooth before the sigmoid.
        m = full_precision(F.interpolate(m, size=x.shape[-3:], mode="trilinear", align_corners=False))
        return self.mask_function(self.scale(m))

    def forward_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.mask(x)
        return self.weigh(x, m), m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_mask(x)[0]


class GRUHead(nn.Module):
    """The chosen head ("gru"): per-step pooling -> LayerNorm -> GRU, a pooled path beside it,
    per-step logits -> their mean (see the module docstring, "Temporal head").

    Args:
        in_channels: C of the backbone features.
        num_classes: classifier outputs.
        cfg: the model's head part (``hidden``, ``layers``, ``dropout`` before ``fc``, ``branch_dropout``).
        causal: the model's time is causal (``ModelConfig.causal_time``): the pooled path is the
            running mean up to each step instead of the mean over the whole clip.

    ``forward(features: (B, C, T, H, W), pool_weights=None) -> logits (B, num_classes)``;
    :meth:`forward_steps` also returns the states, the step logits and the readout weights.
    """

    #: A pooled path beside the GRU, its GRU branch projected into it (False: ``fc`` reads the state).
    residual = True
    bidirectional = False
    #: How the step logits become the clip's ("mean", "last", "attention"), for reports.
    readout = "mean"

    def __init__(self, in_channels: int, num_classes: int, cfg: HeadConfig, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.branch_dropout = cfg.branch_dropout
        self.state_size = cfg.hidden * (2 if self.bidirectional else 1)
        self.norm = self.make_norm(in_channels)
        self.gru = nn.GRU(in_channels, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                          bidirectional=self.bidirectional)
        # Residual: the GRU's state projected into the pooled features' space, starting at zero.
        self.project = nn.Linear(self.state_size, in_channels) if self.residual else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(in_channels if self.residual else self.state_size, num_classes)
        #: False switches the GRU branch of a residual head off (the pooled path alone).
        self.gru_enabled = True
        self.reset_parameters()

    def make_norm(self, channels: int) -> nn.Module:
        """The normalisation of each step's vector before the GRU."""
        return nn.LayerNorm(channels)

    def init_gru(self) -> None:
        """The GRU's init: nn.GRU's own (uniform)."""
        self.gru.reset_parameters()

    def reset_parameters(self) -> None:
        """The head's own init: :meth:`init_gru`, and the residual projection at zero.

        (``fc`` keeps whatever the model's generic init gives it, as in ``tdrag_no_gru``'s head.)
        """
        self.init_gru()
        if self.project is not None:
            nn.init.zeros_(self.project.weight)
            nn.init.zeros_(self.project.bias)

    def run_gru(self, sequence: torch.Tensor) -> torch.Tensor:
        """``sequence: (B, T, C)`` -> last layer's outputs ``(B, T, hidden * directions)``, float32."""
        with torch.autocast(device_type=sequence.device.type, enabled=False):
            out, _ = self.gru(full_precision(sequence).contiguous())
        return out

    def pooled_path(self, sequence: torch.Tensor) -> torch.Tensor:
        """The residual head's pooled vector from the per-step vectors ``(B, T, C)``: their mean over
        time ``(B, 1, C)``, or for a causal model the running mean up to each step ``(B, T, C)`` (so
        step s's logits still depend on the keyframes up to s alone)."""
        if not self.causal:
            return sequence.mean(dim=1, keepdim=True)
        steps = torch.arange(1, sequence.shape[1] + 1, device=sequence.device, dtype=sequence.dtype)
        return sequence.cumsum(dim=1) / steps[None, :, None]

    def branch(self, projected: torch.Tensor) -> torch.Tensor:
        """The GRU branch ``P h`` ``(B, T, C)`` after branch dropout: in training each clip's branch is
        kept (times 1 / (1 - p)) or zeroed, one draw per clip for all its steps; unchanged in eval."""
        p = self.branch_dropout
        if not self.training or p == 0.0:
            return projected
        keep = torch.rand(projected.shape[0], 1, 1, device=projected.device) >= p
        return projected * (keep.to(projected.dtype) / (1.0 - p))

    def readout_logits(self, step_logits: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Readout weights ``(B, T)`` summing to 1 over steps and the clip's logits ``(B, K)`` from the
        step logits ``(B, T, K)`` and states ``(B, T, D)``: here the mean over steps."""
        b, t = states.shape[:2]
        return torch.full((b, t), 1.0 / t, device=states.device, dtype=states.dtype), step_logits.mean(dim=1)

    # Disabling the whole method, not just the GRU call, keeps the break at one place: a break
    # inside nested calls makes dynamo split each enclosing frame too (4 graphs instead of 2).
    @torch.compiler.disable
    def forward_steps(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``features: (B, C, T, H, W)`` -> states ``(B, T, D)``, step logits ``(B, T, K)``, readout
        weights ``(B, T)`` and the clip's logits ``(B, K) = sum_s w_s step_logits_s``.

        ``pool_weights: (B, 1, T, H, W)`` weights the spatial pooling (attention pooling).
        """
        sequence = full_precision(spatial_pool(features, pool_weights))  # (B, T, C)
        states = self.run_gru(self.norm(sequence))
        if self.residual:
            clip = self.pooled_path(sequence)  # (B, 1 or T, C)
            z = clip + self.branch(self.project(states)) if self.gru_enabled else clip.expand_as(sequence)
        else:
            z = states
        # The classifier runs on every step (a (B*T, D) matmul, negligible); the clip's logits are
        # the readout of the step logits, so inspect's step logits and forward's logits agree.
        step_logits = self.fc(self.dropout(z))
        weights, logits = self.readout_logits(step_logits, states)
        return states, step_logits, weights, logits

    def forward(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_steps(features, pool_weights)[3]


@contextmanager
def gru_branch_off(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s residual GRU head uses its pooled path alone (``z_s = mean_t f_t``).

    What the model scores like this is what it owes to everything but the GRU; the drop from its
    normal score is the GRU's share. Raises ValueError for a model whose head is not a residual
    GRU head (without the pooled path there is nothing left when the GRU is off).
    """
    head = getattr(model, "head", None)
    if not isinstance(head, GRUHead) or not head.residual:
        raise ValueError("gru_branch_off: the model has no GRU head with a pooled path (model.head.design), so its GRU "
                         "cannot be switched off")
    before = head.gru_enabled
    head.gru_enabled = False
    try:
        yield model
    finally:
        head.gru_enabled = before


#: The attention designs by name (``ModelConfig.attention.design``), the chosen one first; the
#: designs kept for comparison register beside it (tdrag.models.attention_designs, imported with
#: tdrag.models). A name joined with "+" combines the changes (tdrag.models.designs.design_class).
ATTENTIONS: dict[str, type[ResidualAttention3d]] = {"residual": ResidualAttention3d}

#: The head designs by name (``ModelConfig.head.design``), the chosen one first; the others
#: register beside it (tdrag.models.head_designs).
HEADS: dict[str, type[GRUHead]] = {"gru": GRUHead}


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

    input_layer = INPUT_LAYER

    def __init__(self, cfg: ModelConfig, zero_init_residual: bool = False) -> None:
        super().__init__()
        with_attention, with_gru = VARIANTS[cfg.name]
        self.variant = cfg.name
        self.temporal_strides = tuple(cfg.temporal_strides)
        self.attention_stages = tuple(sorted(cfg.attention.stages)) if with_attention else ()
        self.causal_time = cfg.causal_time
        self.time = "causal" if cfg.causal_time else "local" if cfg.local_time else "centred"
        channels = stage_channels(cfg.width)
        self.stem = make_stem(cfg.width, time=self.time)
        stages = make_stages(cfg.width, self.temporal_strides, time=self.time)
        block = design_class(ATTENTIONS, cfg.attention.design, "model.attention.design")
        # A pooling design's layer4 map is computed after layer4 (which stays a plain stage, so its
        # output is what Grad-CAM on model.layer4 reads) and only weights the head's pooling.
        pools = block.pools and 4 in self.attention_stages
        for number in self.attention_stages:
            if not (pools and number == 4):
                stages[number - 1].append(block(channels[number - 1], cfg.attention, time=self.time))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool_attention = block(channels[3], cfg.attention, time=self.time) if pools else None
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
        return self.head(*self.head_inputs(x))

    def head_inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the head reads: layer4's features and its pooling weights (None unless the attention
        design pools). ``model.head(*model.head_inputs(x))`` is ``model(x)``: the head can run more
        than once on one pass of the trunk (the order tests run it with the GRU on and off)."""
        features, _, pool = self._run(x)
        return features, pool

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
