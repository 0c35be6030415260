"""tdrag.models.gru_head: per-step pooling -> GRU -> dropout -> classifier."""

from __future__ import annotations

import torch

from tdrag.models.gru_head import GRUHead


def _head(dropout: float = 0.5) -> GRUHead:
    torch.manual_seed(0)
    return GRUHead(in_channels=12, num_classes=5, hidden=10, layers=2, dropout=dropout)


def test_shapes_and_last_step_equals_forward():
    head = _head().eval()
    features = torch.randn(3, 12, 6, 4, 4)
    hidden, steps = head.forward_steps(features)
    assert hidden.shape == (3, 6, 10)
    assert steps.shape == (3, 6, 5)
    assert torch.equal(head(features), steps[:, -1])


def test_steps_are_causal():
    # Step t sees frames 0..t only: changing the last frame leaves earlier steps unchanged.
    head = _head().eval()
    features = torch.randn(2, 12, 5, 3, 3)
    changed = features.clone()
    changed[:, :, -1] += 3
    with torch.no_grad():
        _, a = head.forward_steps(features)
        _, b = head.forward_steps(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_pooling_is_a_spatial_mean_per_step():
    head = _head().eval()
    features = torch.randn(2, 12, 5, 3, 3)
    pooled = features.mean(dim=(3, 4), keepdim=True).expand_as(features).contiguous()
    with torch.no_grad():
        torch.testing.assert_close(head(features), head(pooled))


def test_channels_last_features_give_the_same_result():
    head = _head().eval()
    features = torch.randn(2, 12, 5, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(head(features.to(memory_format=torch.channels_last_3d)), head(features))


def test_dropout_acts_in_training_only():
    head = _head(dropout=0.9)
    features = torch.randn(4, 12, 5, 3, 3)
    head.train()
    torch.manual_seed(1)
    a = head(features)
    torch.manual_seed(2)
    b = head(features)
    assert not torch.allclose(a, b)
    head.eval()
    torch.testing.assert_close(head(features), head(features))


def test_gru_runs_in_float32_under_bf16_autocast():
    head = _head().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden, steps = head.forward_steps(torch.randn(2, 12, 5, 3, 3).bfloat16())
    assert hidden.dtype == torch.float32
    assert torch.isfinite(steps.float()).all()


def test_gradients_reach_the_gru():
    head = _head()
    head(torch.randn(2, 12, 5, 3, 3)).sum().backward()
    for name, p in head.gru.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
