"""Small TDRAG models in eval mode whose every path carries signal, for the tests of what a step sees
(causal and local time)."""

from __future__ import annotations

import torch

from tdrag.models.registry import build_model
from tdrag.models.tdrag import ResidualAttention3d


def signal_model(variant: str = "tdrag", seed: int = 0, **options) -> torch.nn.Module:
    """``build_model(variant, width=8, head={"hidden": 16}, **options)`` in eval mode, with non-trivial
    BatchNorm statistics and attention logits (a fresh model's are near-identity and near-uniform)."""
    torch.manual_seed(seed)
    model = build_model(variant, width=8, head={"hidden": 16}, **options).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, ResidualAttention3d):
                m.logits.weight.normal_(0, 0.5)
    return model
