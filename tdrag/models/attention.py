"""3D residual attention: a spatial mask per time step, applied as ``x * (1 + M)``.

The TDRAG paper names "3D residual attention blocks" but only its abstract is public, so the
design below is ours, after the residual attention learning of Wang et al. (CVPR 2017,
"Residual Attention Network"), cut down to one hourglass level and to a spatial map:

* **Where**: one block after the last BasicBlock of a stage (``model.layerK[-1]``), on the stage's
  output, for each stage listed in ``ModelConfig.attention_stages`` (default 2, 3, 4). The trunk is
  the stage itself; the block only re-weights it, so r3d_18 weights still fit the trunk.
* **Mask branch** (depth 3 convolutions, reduction r = 4, at least 8 channels):
  ``1x1x1 conv C->C/r + BN + ReLU`` -> ``max-pool (1, 3, 3) stride (1, 2, 2)`` (bottom-up: a
  wider spatial view at half resolution; time is not pooled, so there is one map per time step)
  -> ``3x3x3 conv C/r->C/r + BN + ReLU`` (the 3-frame kernel lets motion shape the mask)
  -> ``1x1x1 conv C/r->1`` (mask logits) -> trilinear upsampling of the one-channel logits back to
  (T', H', W') (top-down) -> the mask function. M: (B, 1, T', H', W'), shared by all channels.
* **Mask function** (``ModelConfig.attention_mask``): ``"sigmoid"``, M = sigmoid(logits), each
  place on its own; or ``"softmax"``, a spatial softmax per time step at temperature ``tau``
  divided by its peak, M = exp((logits - max_hw logits) / tau), in (0, 1] with the peak at 1:
  the places compete, so more attention on one place means relatively less on every other.
* **Causal time** (``causal=True``): the 3x3x3 context conv pads only the past, so the mask at
  step t depends on no later step (time is never pooled or resampled in the branch).
* **Residual attention**: ``out = x * (1 + M)`` with M in (0, 1), so a useless mask scales
  features by at most 2 and can never erase them (the paper's "residual" in residual attention).
  ``residual=False`` (``ModelConfig.attention_residual``) gates without the floor, ``out = x * M``:
  what the mask leaves out is gone, so the map must find the evidence for the model to work.
* **Pooling** (``ModelConfig.attention_pooling`` at layer4): only :meth:`mask` is used; the
  head pools with M instead of the features being re-weighted.
* **Learned temperature** (``ModelConfig.attention_learn_temperature``): the logits are divided
  by ``tau = exp(s)`` with ``s`` a learned scalar per block (starting at ``log
  attention_temperature``), for either mask function.
* **Init**: the logits conv starts at N(0, 0.01) weights and zero bias, so M starts near uniform
  (0.5 for the sigmoid, 1 for the softmax: a uniform gain that BN in the next stage absorbs) and
  gradients still reach every layer of the branch from the first step.

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

from tdrag.models.resnet3d import make_conv3d

MASK_KINDS = ("sigmoid", "softmax")


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
    """Spatial residual attention for one stage's output.

    Args:
        channels: C, the stage's output channels.
        reduction: channel reduction r of the mask branch.
        min_channels: floor on the mask branch's channels (small CPU models).
        mask: "sigmoid" or "softmax" (see the module docstring).
        temperature: tau of the softmax mask (and, when learned, its starting value for either mask).
        learn_temperature: make tau a parameter (``log tau`` is learned), dividing the logits of
            the sigmoid mask too: the block can sharpen or soften its own map.
        causal: pad the context conv's time axis only in the past.
        residual: ``x * (1 + M)`` (True) or ``x * M`` (False).

    ``forward(x: (B, C, T, H, W)) -> (B, C, T, H, W)``; :meth:`forward_with_mask` also returns
    M: (B, 1, T, H, W) float32.
    """

    def __init__(self, channels: int, reduction: int = 4, min_channels: int = 8, mask: str = "sigmoid",
                 temperature: float = 1.0, causal: bool = False, residual: bool = True,
                 learn_temperature: bool = False) -> None:
        super().__init__()
        self.kind = mask
        self.temperature = float(temperature)
        # log tau: learned when asked (a scale must stay positive), absent otherwise so state dicts
        # of fixed-temperature models do not change.
        self.log_temperature = nn.Parameter(torch.tensor(math.log(self.temperature))) if learn_temperature else None
        self.residual = bool(residual)
        hidden = max(channels // reduction, min_channels)
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
        if self.log_temperature is not None:
            with torch.no_grad():
                self.log_temperature.fill_(math.log(self.temperature))

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """M: (B, 1, T, H, W) float32 in (0, 1) for ``x: (B, C, T, H, W)``."""
        m = self.logits(self.context(self.pool(self.reduce(x))))
        # Upsample the one-channel logits, not C/r channels: cheaper, and smooth before the sigmoid.
        m = F.interpolate(m, size=x.shape[-3:], mode="trilinear", align_corners=False).float()
        if self.log_temperature is not None:
            m = m / self.log_temperature.exp()
        if self.kind == "sigmoid":
            return torch.sigmoid(m)
        # Spatial softmax per time step divided by its peak: exp((m - max) / tau), in (0, 1].
        scaled = m if self.log_temperature is not None else m / self.temperature
        peak = scaled.amax(dim=(-2, -1), keepdim=True)
        return torch.exp(scaled - peak)

    def forward_with_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.mask(x)
        return x * ((1.0 + m) if self.residual else m).to(x.dtype), m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_mask(x)[0]
