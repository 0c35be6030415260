"""3D ResNet-18 with torchvision ``r3d_18``'s shapes, and the ``r3d18`` baseline built from it.

Layout (Tran et al., "A Closer Look at Spatiotemporal Convolutions", the R3D-18 column):

    stem    Conv3d(3, w, (3, 7, 7), stride (1, 2, 2), padding (1, 3, 3)) + BN + ReLU
    layer1  2 BasicBlocks, w channels,  stride (t1, 1, 1)
    layer2  2 BasicBlocks, 2w channels, stride (t2, 2, 2)
    layer3  2 BasicBlocks, 4w channels, stride (t3, 2, 2)
    layer4  2 BasicBlocks, 8w channels, stride (t4, 2, 2)

with w = 64 and temporal strides (1, 2, 2, 2) in r3d_18. A BasicBlock is two 3x3x3 convolutions
with BN, a shortcut (1x1x1 conv + BN when the shape changes) and ReLU after the sum.

Causal time (``time="causal"``, TDRAG's ``ModelConfig.causal_time``): every temporal convolution
pads only the past (:class:`CausalConv3d`), so an output step depends on no later frame: a
kernel of ``k`` frames with temporal stride ``s`` gets ``k - s`` frames of zero padding before the
clip and none after, which keeps ``T / s`` output steps and makes step ``j`` see frames up to
``j * s + s - 1``, the last frame it covers. Weight shapes do not change.

Local time (``time="local"``, TDRAG's ``ModelConfig.local_time``): every temporal convolution reads
only the frames of its own output step: a kernel of 1 frame, or of ``s`` frames with stride ``s``
where the stage strides time (non-overlapping), and no temporal padding. An output step then
depends on exactly the frames it covers (layer4's step ``j`` on frames ``j * s`` .. ``j * s + s - 1``
for the product ``s`` of the strides), so nothing before the temporal head combines steps: a bag
of per-step features, whose order only the head can read. Temporal kernel sizes change (1 or
``s`` instead of 3), so r3d_18 weights load only where shapes agree.

Module and parameter names follow torchvision (``stem.0.weight``, ``layer2.0.conv1.0.weight``,
``layer2.0.downsample.1.running_mean``, ``fc.weight``), so a torchvision r3d_18 state dict loads
into :class:`R3D18` as is, and into the TDRAG variants' backbones with ``strict=False``
(temporal strides change no weight shape). Nothing is downloaded here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tdrag.models.inspection import ModelInspection

# r3d_18's temporal strides of stages 1..4: time 16 -> 16, 8, 4, 2.
R3D18_TEMPORAL_STRIDES: tuple[int, int, int, int] = (1, 2, 2, 2)
# Spatial strides of stages 1..4 (the stem already halves H and W).
SPATIAL_STRIDES: tuple[int, int, int, int] = (1, 2, 2, 2)
BLOCKS_PER_STAGE = 2


class CausalConv3d(nn.Conv3d):
    """A Conv3d whose temporal padding is all in the past: ``k_t - s_t`` zero frames before the clip.

    Same arguments and parameters as ``nn.Conv3d`` (so state dicts are interchangeable); only the
    temporal part of ``padding`` is ignored. ``x: (B, C, T, H, W) -> (B, C', T / s_t, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True) -> None:
        kernel = _triple(kernel_size)
        strides = _triple(stride)
        pads = _triple(padding)
        super().__init__(in_channels, out_channels, kernel, stride=strides, padding=(0, pads[1], pads[2]), bias=bias)
        self.time_pad = max(0, kernel[0] - strides[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.time_pad:
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, 0))
        return super().forward(x)


def _triple(value) -> tuple[int, int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * 3  # type: ignore[return-value]


#: How a temporal convolution treats time: "centred" (r3d_18's), "causal" (past padding only) or
#: "local" (only the frames of its own output step; see the module docstring).
TIME_MODES = ("centred", "causal", "local")


def make_conv3d(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = False,
                time: str = "centred") -> nn.Conv3d:
    """``nn.Conv3d`` (``time="centred"``), :class:`CausalConv3d` (same parameters, ``"causal"``), or
    with ``"local"`` an ``nn.Conv3d`` whose temporal kernel equals its temporal stride, unpadded."""
    if time == "causal":
        return CausalConv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
    if time == "local":
        kernel, strides, pads = _triple(kernel_size), _triple(stride), _triple(padding)
        kernel_size, padding = (strides[0], kernel[1], kernel[2]), (0, pads[1], pads[2])
    elif time != "centred":
        raise ValueError(f"time must be one of {', '.join(TIME_MODES)}, got {time!r}")
    return nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)


def conv3x3x3(in_channels: int, out_channels: int, stride: tuple[int, int, int] = (1, 1, 1),
              time: str = "centred") -> nn.Conv3d:
    """3x3x3 convolution, padding 1, no bias (a BatchNorm follows); ``time`` as in :func:`make_conv3d`."""
    return make_conv3d(in_channels, out_channels, 3, stride=stride, padding=1, time=time)


class BasicBlock(nn.Module):
    """Two 3x3x3 conv + BN layers and a shortcut; ``x: (B, C_in, T, H, W) -> (B, C_out, T/st, H/s, W/s)``.

    ``conv1`` / ``conv2`` are Sequentials (conv, BN[, ReLU]) and ``downsample`` a Sequential
    (1x1x1 conv, BN) or None, as in torchvision, so r3d_18 weights map one to one.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int] = (1, 1, 1),
                 time: str = "centred") -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            conv3x3x3(in_channels, out_channels, stride, time), nn.BatchNorm3d(out_channels), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(conv3x3x3(out_channels, out_channels, time=time), nn.BatchNorm3d(out_channels))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != (1, 1, 1) or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        # In place is safe: autograd does not need the BN output for the sum's backward.
        out += identity
        return self.relu(out)


#: The layer through which alone a model built on :func:`make_stem` reads its clip: the stem's
#: convolution, an affine map (a model's ``input_layer``; attribution code may take gradients past it).
#: A subclass whose forward reads the clip anywhere else must set its ``input_layer`` to None.
INPUT_LAYER = "stem.0"


def make_stem(width: int, time: str = "centred") -> nn.Sequential:
    """r3d_18's stem: ``(B, 3, T, H, W) -> (B, width, T, H/2, W/2)``."""
    return nn.Sequential(
        make_conv3d(3, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), time=time),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def make_stage(in_channels: int, out_channels: int, stride: tuple[int, int, int], blocks: int = BLOCKS_PER_STAGE,
               time: str = "centred") -> nn.Sequential:
    """``blocks`` BasicBlocks; the first one carries the stride and the channel change."""
    layers = [BasicBlock(in_channels, out_channels, stride, time)]
    layers += [BasicBlock(out_channels, out_channels, time=time) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


def stage_channels(width: int) -> tuple[int, int, int, int]:
    """Output channels of stages 1..4: width * (1, 2, 4, 8)."""
    return (width, 2 * width, 4 * width, 8 * width)


def make_stages(width: int, temporal_strides: Sequence[int], time: str = "centred") -> list[nn.Sequential]:
    """The four stages of a 3D ResNet-18 with the given width and temporal strides."""
    channels = stage_channels(width)
    stages = []
    in_channels = width
    for out_channels, t_stride, s_stride in zip(channels, temporal_strides, SPATIAL_STRIDES):
        stages.append(make_stage(in_channels, out_channels, (t_stride, s_stride, s_stride), time=time))
        in_channels = out_channels
    return stages


def init_resnet_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """torchvision's video-ResNet init: Kaiming (fan_out, ReLU) convs, BN (1, 0), Linear N(0, 0.01).

    ``zero_init_residual`` sets the last BN gamma of every BasicBlock to 0 so each block starts as
    the identity (Goyal et al., 2017); off by default because torchvision's r3d_18 does not do it
    for BasicBlocks, and the ``r3d18`` baseline keeps its init.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm3d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)


def check_input(x: torch.Tensor) -> None:
    """Shape check only (no device sync): ``x`` must be ``(B, 3, T, H, W)``."""
    if x.dim() != 5 or x.shape[1] != 3:
        raise ValueError(f"model input: expected a (B, 3, T, H, W) clip batch, got shape {tuple(x.shape)}")


class R3D18(nn.Module):
    """The ``r3d18`` baseline: torchvision's ``r3d_18`` (same layers, strides, names, init).

    Args:
        num_classes: size of the classifier ``fc``.
        width: channels of stage 1 (64 is r3d_18; smaller widths make CPU-sized models).
        zero_init_residual: see :func:`init_resnet_weights` (off keeps r3d_18's init).

    ``forward(x: (B, 3, T, H, W)) -> logits (B, num_classes)``.
    """

    variant = "r3d18"
    input_layer = INPUT_LAYER

    def __init__(self, num_classes: int, width: int, zero_init_residual: bool = False) -> None:
        super().__init__()
        self.stem = make_stem(width)
        self.layer1, self.layer2, self.layer3, self.layer4 = make_stages(width, R3D18_TEMPORAL_STRIDES)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(stage_channels(width)[3], num_classes)
        self.temporal_strides = R3D18_TEMPORAL_STRIDES
        init_resnet_weights(self, zero_init_residual)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W) -> (B, 8w, T/8, H/16, W/16)``, the layer4 output."""
        check_input(x)
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: torch.Tensor, return_inspection: bool = False) -> torch.Tensor | ModelInspection:
        """Logits ``(B, num_classes)``; a ModelInspection (logits only) when ``return_inspection``."""
        logits = self.fc(self.avgpool(self.features(x)).flatten(1))
        return ModelInspection(logits=logits) if return_inspection else logits

    def inspect(self, x: torch.Tensor) -> ModelInspection:
        """Logits only: r3d18 has neither attention nor a GRU."""
        return self(x, return_inspection=True)
