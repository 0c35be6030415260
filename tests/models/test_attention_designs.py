"""tdrag.models.tdrag.ResidualAttention3d and tdrag.models.attention_designs: the residual attention block's mask, output, formats and gradients, and
the designs kept beside it."""

from __future__ import annotations

import pytest
import torch

from tdrag.config import AttentionConfig
from tdrag.models.designs import design_class
from tdrag.models.tdrag import ATTENTIONS, ResidualAttention3d

CL = torch.channels_last_3d


def _block(channels: int = 16, seed: int = 0, design: str = "residual", **cfg) -> ResidualAttention3d:
    torch.manual_seed(seed)
    return design_class(ATTENTIONS, design)(channels, AttentionConfig(**cfg))


@pytest.mark.parametrize("shape", [(2, 16, 4, 8, 8), (1, 16, 3, 7, 5), (2, 16, 2, 1, 1)])
def test_mask_shape_range_and_residual_form(shape):
    block = _block().eval()
    x = torch.randn(shape).relu()
    with torch.no_grad():
        out, m = block.forward_with_mask(x)
    assert m.shape == (shape[0], 1, *shape[2:])
    assert m.dtype == torch.float32
    assert torch.all((m > 0) & (m < 1))
    torch.testing.assert_close(out, x * (1 + m))
    torch.testing.assert_close(block(x), out)


def test_mask_starts_near_one_half_and_becomes_nonuniform_when_trained():
    block = _block()
    x = torch.randn(2, 16, 4, 8, 8).relu()
    m = block.mask(x)
    assert (m - 0.5).abs().max() < 0.05
    # A few steps of pushing the mask up in one corner must move it away from uniform.
    opt = torch.optim.SGD(block.parameters(), lr=1.0)
    target = torch.zeros(1, 1, 1, 8, 8)
    target[..., :4, :4] = 1
    for _ in range(10):
        loss = ((block.mask(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        m = block.mask(x)
    assert m[..., :4, :4].mean() > m[..., 4:, 4:].mean() + 0.2


def test_gradients_reach_every_mask_parameter():
    block = _block()
    x = torch.randn(2, 16, 4, 8, 8).relu()
    (block(x) * torch.randn(2, 16, 4, 8, 8)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_channels_last_3d_is_kept_and_equivalent():
    block = _block().eval()
    x = torch.randn(2, 16, 4, 8, 8).relu()
    with torch.no_grad():
        ref = block(x)
        block_cl = block.to(memory_format=CL)
        out = block_cl(x.to(memory_format=CL))
    assert out.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_bf16_autocast_on_cpu_keeps_the_mask_float32():
    block = _block().eval()
    x = torch.randn(2, 16, 4, 8, 8).relu()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out, m = block.forward_with_mask(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert m.dtype == torch.float32
    assert torch.isfinite(out.float()).all() and torch.all((m >= 0) & (m <= 1))


def test_no_python_loop_over_time_the_mask_mixes_neighbouring_frames():
    # The 3x3x3 context conv sees t-1..t+1: changing frame 0 changes frame 1's mask but not frame 3's.
    block = _block().eval()
    x = torch.randn(1, 16, 4, 8, 8).relu()
    y = x.clone()
    y[:, :, 0] += 5
    with torch.no_grad():
        mx, my = block.mask(x), block.mask(y)
    assert not torch.allclose(mx[:, :, 1], my[:, :, 1])
    torch.testing.assert_close(mx[:, :, 3], my[:, :, 3])


def _logits(block: ResidualAttention3d, x: torch.Tensor) -> torch.Tensor:
    """The block's mask logits upsampled to ``x``'s size, computed here from its layers."""
    return torch.nn.functional.interpolate(block.logits(block.context(block.pool(block.reduce(x)))),
                                           size=x.shape[-3:], mode="trilinear", align_corners=False)


def test_softmax_mask_is_a_spatial_softmax_divided_by_its_peak():
    block = _block(seed=1, design="softmax", temperature=0.5).eval()
    with torch.no_grad():
        block.logits.weight.normal_(0, 1.0)
        x = torch.randn(2, 16, 3, 6, 6).relu()
        m = block.mask(x)
        logits = _logits(block, x)
    assert m.shape == (2, 1, 3, 6, 6) and m.dtype == torch.float32
    assert torch.all((m > 0) & (m <= 1))
    torch.testing.assert_close(m.amax(dim=(-2, -1)), torch.ones(2, 1, 3))  # peak 1 in every frame
    expected = torch.softmax((logits / 0.5).flatten(3), dim=-1).view_as(logits)
    torch.testing.assert_close(m, expected / expected.amax(dim=(-2, -1), keepdim=True))
    # A lower temperature makes the same logits more peaked.
    sharp = _block(design="softmax", temperature=0.1).eval()
    sharp.load_state_dict(block.state_dict())
    with torch.no_grad():
        assert sharp.mask(x).mean() < m.mean()


def test_the_temperature_divides_the_sigmoid_masks_logits():
    block = _block(temperature=0.25).eval()
    with torch.no_grad():
        block.logits.weight.normal_(0, 1.0)
        x = torch.randn(2, 16, 3, 6, 6).relu()
        torch.testing.assert_close(block.mask(x), torch.sigmoid(_logits(block, x) / 0.25))


def test_the_gate_design_has_no_residual_floor():
    block = _block(design="gate").eval()
    x = torch.randn(2, 16, 3, 6, 6)
    with torch.no_grad():
        out, m = block.forward_with_mask(x)
        torch.testing.assert_close(out, x * m)
        chosen = _block().eval()
        chosen.load_state_dict(block.state_dict())
        torch.testing.assert_close(chosen(x), x * (1 + m))


def test_a_learned_temperature_divides_the_mask_logits():
    fixed, learned = _block().eval(), _block(design="learned_temperature").eval()
    x = torch.randn(2, 16, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(learned.mask(x), fixed.mask(x))  # tau starts at cfg.temperature = 1
        learned.log_temperature.fill_(float(torch.tensor(0.5).log()))
        torch.testing.assert_close(learned.mask(x), torch.sigmoid(_logits(fixed, x) / 0.5))
    assert "log_temperature" not in dict(fixed.named_parameters())
    assert _block(design="learned_temperature", temperature=3.0).log_temperature.exp().item() == pytest.approx(3.0)
    # With the softmax mask the learned tau replaces the fixed one.
    both = _block(design="softmax+learned_temperature", temperature=0.5).eval()
    with torch.no_grad():
        both.log_temperature.fill_(0.0)
        logits = _logits(both, x)
        torch.testing.assert_close(both.mask(x), torch.exp(logits - logits.amax(dim=(-2, -1), keepdim=True)))


def test_the_registry_lists_the_chosen_block_first_and_each_other_design_changes_one_thing():
    assert list(ATTENTIONS)[0] == "residual" and ATTENTIONS["residual"] is ResidualAttention3d
    shared = {"__module__", "__qualname__", "__doc__", "__firstlineno__", "__static_attributes__", "__init__",
              "reset_parameters"}
    for name, cls in list(ATTENTIONS.items())[1:]:
        assert cls.__bases__ == (ResidualAttention3d,), name
        assert len(set(vars(cls)) - shared) == 1, name
    assert design_class(ATTENTIONS, "softmax+pooling").pools and not ResidualAttention3d.pools


def test_attention_designs_are_checked_by_build_model():
    from tdrag.models.registry import build_model

    with pytest.raises(ValueError, match="model.attention.design"):
        build_model("tdrag", width=8, attention={"design": "relu"})
    with pytest.raises(ValueError, match="model.attention.temperature"):
        build_model("tdrag", width=8, attention={"design": "softmax", "temperature": 0})
