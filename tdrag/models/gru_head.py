"""Temporal head: average over space per time step -> GRU -> dropout -> classifier, at every step.

Fast path: the per-step features are one spatial mean and a transpose (no Python loop over time);
the GRU gets a contiguous batch-first (B, T, C) input so cuDNN runs the whole sequence in one call.
The GRU runs in float32 even under bf16 autocast (a recurrence accumulates rounding error, and
the GRU is a tiny share of the model's FLOPs), and outside torch.compile: dynamo does not trace
RNN modules, so the whole head (pool, GRU, fc: well under 1% of the FLOPs) is marked as the one
intended graph break. A compiled TDRAG is then one graph for the backbone, an eager head, and a
trivial graph for the last-step slice, instead of the several breaks dynamo would otherwise make.
"""

from __future__ import annotations

import torch
from torch import nn


class GRUHead(nn.Module):
    """Per-time-step spatial pooling -> GRU (batch_first) -> dropout -> ``fc``.

    Args:
        in_channels: C of the backbone features.
        num_classes: classifier outputs.
        hidden: GRU hidden size.
        layers: stacked GRU layers.
        dropout: dropout probability before ``fc``.

    ``forward(features: (B, C, T, H, W)) -> logits (B, num_classes)``, the classifier on the last
    step's hidden state. :meth:`forward_steps` returns every step's hidden state and logits.
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 256, layers: int = 1, dropout: float = 0.5) -> None:
        super().__init__()
        self.gru = nn.GRU(in_channels, hidden, num_layers=layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def run_gru(self, sequence: torch.Tensor) -> torch.Tensor:
        """``sequence: (B, T, C)`` -> last layer's outputs ``(B, T, hidden)``, float32, cuDNN on CUDA."""
        with torch.autocast(device_type=sequence.device.type, enabled=False):
            out, _ = self.gru(sequence.float().contiguous())
        return out

    # Disabling the whole method, not just the GRU call, keeps the break at one place: a break
    # inside nested calls makes dynamo split each enclosing frame too (4 graphs instead of 2).
    @torch.compiler.disable
    def forward_steps(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features: (B, C, T, H, W)`` -> hidden states ``(B, T, hidden)``, step logits ``(B, T, num_classes)``."""
        # (B, C, T) -> (B, T, C); already contiguous when the features are channels_last_3d.
        sequence = features.mean(dim=(3, 4)).transpose(1, 2)
        hidden = self.run_gru(sequence)
        # The classifier runs on every step (a (B*T, hidden) matmul, negligible) so that forward's
        # logits are bit-for-bit the last step of inspect's step_logits.
        step_logits = self.fc(self.dropout(hidden))
        return hidden, step_logits

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.forward_steps(features)[1][:, -1]
