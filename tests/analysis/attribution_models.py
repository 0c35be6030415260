"""Hand-built models for the attribution and faithfulness tests (imported, not a conftest)."""

from __future__ import annotations

import torch
from torch import nn

# Clip geometry of the hand-built models: (B, 3, T, H, W) with T=4, H=W=8.
T, H, W = 4, 8, 8
# The only region the region model's answer depends on: frame 2, rows 2-3, columns 4-5.
FRAME, ROWS, COLS = 2, slice(2, 4), slice(4, 6)


def region_mask() -> torch.Tensor:
    """``(T, H, W)`` bool, True on the known region."""
    mask = torch.zeros(T, H, W, dtype=torch.bool)
    mask[FRAME, ROWS, COLS] = True
    return mask


class RegionModel(nn.Module):
    """Three classes; class 1's logit grows with the brightness of the known region.

    A pointwise ``layer1`` (Conv3d 1x1x1, positive weights) and a smooth Softplus keep every
    pixel's influence local; the pooled feature is the region's mean plus a 1 % share of the
    whole clip's mean, so pixels outside the region matter, only far less.
    """

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Conv3d(3, 4, 1)
        self.act = nn.Softplus()
        self.fc = nn.Linear(4, 3)
        self.unused = nn.Linear(2, 2)  # never called: randomising it must change nothing
        with torch.no_grad():
            self.layer1.weight.fill_(0.5)
            self.layer1.bias.zero_()
            self.fc.weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4, [-1.0] * 4]))
            self.fc.bias.zero_()
        self.register_buffer("region", region_mask().float()[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.layer1(x))
        local = (h * self.region).sum((2, 3, 4)) / self.region.sum()
        return self.fc(local + 0.01 * h.mean((2, 3, 4)))


def region_clips(batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Noise clips ``(B, 3, T, H, W)`` with the known region bright (+2)."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.randn(batch, 3, T, H, W, generator=gen)
    x[:, :, FRAME, ROWS, COLS] = 2.0
    return x


class TinyConvGRU(nn.Module):
    """stem/layer1..layer4 of 3D convs with in-place ReLUs, a GRU over time and ``fc``.

    Time is kept (T steps into the GRU); space is halved in layer2..layer4.
    """

    def __init__(self, width: int = 4, classes: int = 3, hidden: int = 6, smooth: bool = False) -> None:
        super().__init__()

        def act() -> nn.Module:
            return nn.Tanh() if smooth else nn.ReLU(inplace=True)

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=(1, stride, stride), padding=1), nn.BatchNorm3d(cout), act())

        self.stem = block(3, width, 1)
        self.layer1 = block(width, width, 1)
        self.layer2 = block(width, width, 2)
        self.layer3 = block(width, width, 2)
        self.layer4 = block(width, width, 1)
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        steps, _ = self.gru(h.mean((3, 4)).transpose(1, 2))
        return self.fc(steps[:, -1])


def tiny_conv_gru(smooth: bool = False, seed: int = 0) -> TinyConvGRU:
    torch.manual_seed(seed)
    model = TinyConvGRU(smooth=smooth)
    # Non-trivial BatchNorm statistics, so eval mode differs from train mode.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


class SquareAndSumModel(nn.Module):
    """A network whose CAM values are worked out by hand (``tests/analysis/test_cam.py``).

    ``features`` passes the first two input channels through, so its activations ``A`` are
    ``x[:, :2]`` (``(B, 2, T, H, W)``). The logits are

        class 0: 0.5 * sum(A_0 ** 2) + sum(A_1)    (gradients g_0 = A_0, g_1 = 1)
        class 1: -sum(A_1)                          (gradients g_0 = 0,   g_1 = -1)
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.features(x[:, :2])
        a0, a1 = a[:, 0].flatten(1), a[:, 1].flatten(1)
        return torch.stack([0.5 * a0.pow(2).sum(1) + a1.sum(1), -a1.sum(1)], dim=1)
