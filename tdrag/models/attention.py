"""3D residual attention: a spatial mask per time step, applied as ``x * (1 + M)``.

The TDRAG paper names "3D residual attention blocks" but only its abstract is public, so the
design below is ours, after the residual attention learning of Wang et al. (CVPR 2017,
"Residual Attention Network"), cut down to one hourglass level and to a spatial map:

* **Where**: one block after the last BasicBlock of a stage (``model.layerK[-1]``), on the stage's
  output, for each stage listed in ``ModelConfig.attention.stages`` (default 2, 3, 4). The trunk is
  the stage itself; the block only re-weights it, so r3d_18 weights still fit the trunk.
* **Mask branch** (depth 3 convolutions, reduction r = 4, at least 8 channels):
  ``1x1x1 conv C->C/r + BN + ReLU`` -> ``max-pool (1, 3, 3) stride (1, 2, 2)`` (bottom-up: a
  wider spatial view at half resolution; time is not pooled, so there is one map per time step)
  -> ``3x3x3 conv C/r->C/r + BN + ReLU`` (the 3-frame kernel lets motion shape the mask)
  -> ``1x1x1 conv C/r->1`` (mask logits) -> trilinear upsampling of the one-channel logits back to
  (T', H', W') (top-down) -> divided by the temperature tau (``ModelConfig.attention.temperature``,
  1) -> the mask function, M = sigmoid(logits / tau): each place on its own. M: (B, 1, T', H', W'),
  shared by all channels.
* **Causal time** (``causal=True``): the 3x3x3 context conv pads only the past, so the mask at
  step t depends on no later step (time is never pooled or resampled in the branch).
* **Residual attention**: ``out = x * (1 + M)`` with M in (0, 1), so a useless mask scales
  features by at most 2 and can never erase them (the paper's "residual" in residual attention).
* **Init**: the logits conv starts at N(0, 0.01) weights and zero bias, so M starts near uniform
  (0.5 for the sigmoid, 1 for the softmax: a uniform gain that BN in the next stage absorbs) and
  gradients still reach every layer of the branch from the first step.

That block, :class:`ResidualAttention3d`, is the chosen design (``"residual"``). The designs kept
for comparison (:data:`ATTENTIONS`; ``ModelConfig.attention.design``, several joined with "+")
are its subclasses, each changing one thing: :class:`SoftmaxMask` (a spatial softmax per step
divided by its peak: places compete), :class:`Gate` (``x * M``, no floor), :class:`Pooling`
(layer4's map weights the head's pooling instead of re-weighting layer4) and
:class:`LearnedTemperature` (tau learned per block). None did better (benchmarks/RESULTS.md).

:func:`upsample_attention` brings stage-resolution maps to frame size; it is the one way maps
are resized for display and scoring (``tdrag predict``'s overlays and the analysis package).

Fast path: only Conv3d, BatchNorm3d, ReLU, max-pool, interpolate, sigmoid and a broadcast
multiply, with no Python loop over time and no host sync; all of them run in channels_last_3d and
under bf16 autocast, and torch.compile fuses the element-wise tail. The sigmoid is taken in
float32 (on a one-channel map, so it is cheap) so that the maps analysis reads keep their
precision; the multiply goes back to the features' dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tdrag.config import AttentionConfig
from tdrag.models.resnet3d import make_conv3d

def upsample_attention(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Trilinear upsampling of stage maps to frame size: ``(B, 1, T', H', W')`` or ``(B, T', H', W')``
    -> ``(B, T, H, W)`` float32, still within the maps' range (a convex combination).

    ``size`` is the target ``(T, H, W)``. Time is interpolated too, so a keyframe between two
    stage steps shows their blend (``align_corners=False``: each stage step covers an equal span).
    """
    if maps.dim() == 4:
        maps = maps.unsqueeze(1)
    if maps.dim() != 5 or maps.shape[1] != 1:
        raise ValueError(f"attention maps must be (B, 1, T', H', W'), got {tuple(maps.shape)}")
    size = tuple(int(s) for s in size)
    if len(size) != 3:
        raise ValueError(f"size must be (T, H, W), got {size}")
    return F.interpolate(maps.float(), size=size, mode="trilinear", align_corners=False)[:, 0]


class ResidualAttention3d(nn.Module):
    """The chosen block ("residual"): spatial residual attention for one stage's output.

    Args:
        channels: C, the stage's output channels.
        cfg: the model's attention part (``cfg.temperature`` divides the mask logits).
        causal: pad the context conv's time axis only in the past.

    ``forward(x: (B, C, T, H, W)) -> (B, C, T, H, W)``; :meth:`forward_with_mask` also returns
    M: (B, 1, T, H, W) float32. The designs kept for comparison (:data:`ATTENTIONS`) are its
    subclasses, each overriding one of :meth:`scale`, :meth:`mask_function`, :meth:`apply` or
    :attr:`pools`.
    """

    #: Channel reduction r of the mask branch, and its floor (small CPU models).
    reduction = 4
    min_channels = 8
    #: Whether layer4's block weights the head's spatial pooling instead of re-weighting layer4.
    pools = False

    def __init__(self, channels: int, cfg: AttentionConfig, causal: bool) -> None:
        super().__init__()
        self.temperature = float(cfg.temperature)
        hidden = max(channels // self.reduction, self.min_channels)
        self.reduce = nn.Sequential(
            nn.Conv3d(channels, hidden, kernel_size=1, bias=False), nn.BatchNorm3d(hidden), nn.ReLU(inplace=True)
        )
        self.pool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        self.context = nn.Sequential(
            make_conv3d(hidden, hidden, kernel_size=3, padding=1, causal=causal), nn.BatchNorm3d(hidden),
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
        m = F.interpolate(m, size=x.shape[-3:], mode="trilinear", align_corners=False).float()
        return self.mask_function(self.scale(m))

    def forward_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.mask(x)
        return self.weigh(x, m), m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_mask(x)[0]


# --- designs kept for comparison (benchmarks/RESULTS.md: none did better) -------------------------


class SoftmaxMask(ResidualAttention3d):
    """"softmax": a spatial softmax per time step divided by its peak, M = exp(l / tau - max_hw l / tau)
    in (0, 1] with the peak at 1: places compete, more on one means relatively less on every other."""

    def mask_function(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.exp(logits - logits.amax(dim=(-2, -1), keepdim=True))


class Gate(ResidualAttention3d):
    """"gate": ``x * M`` without the residual floor: what the mask leaves out is gone, so the map must
    find the evidence for the model to work."""

    def weigh(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return x * m.to(x.dtype)


class Pooling(ResidualAttention3d):
    """"pooling": layer4's map weights the head's spatial pooling (each step's vector is
    ``sum M x / sum M``) instead of re-weighting layer4, so it is exactly the evidence the classifier
    reads; the block sits after ``model.layer4`` as ``model.pool_attention`` and only its
    :meth:`mask` is used. The other stages' blocks are unchanged."""

    pools = True


class LearnedTemperature(ResidualAttention3d):
    """"learned_temperature": tau = exp(s) with ``s`` a learned scalar per block (``log_temperature``,
    starting at log ``cfg.temperature``): the block can sharpen or soften its own map."""

    def __init__(self, channels: int, cfg: AttentionConfig, causal: bool) -> None:
        super().__init__(channels, cfg, causal)
        # log tau, so that tau stays positive.
        self.log_temperature = nn.Parameter(torch.tensor(math.log(self.temperature)))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if "log_temperature" in self._parameters:  # not yet while the base class builds
            with torch.no_grad():
                self.log_temperature.fill_(math.log(self.temperature))

    def scale(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.log_temperature.exp()


#: The attention designs by name (``ModelConfig.attention.design``), the chosen one first; a name
#: joined with "+" combines the changes (:func:`tdrag.models.designs.design_class`).
ATTENTIONS: dict[str, type[ResidualAttention3d]] = {
    "residual": ResidualAttention3d,
    "softmax": SoftmaxMask,
    "gate": Gate,
    "pooling": Pooling,
    "learned_temperature": LearnedTemperature,
}
