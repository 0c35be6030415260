"""tdrag.models.resnet3d: r3d18 is torchvision's r3d_18 (layers, strides, names, parameter count)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.video import r3d_18

from tdrag.models.registry import build_model
from tdrag.models.resnet3d import R3D18, BasicBlock, make_stages, stage_channels


def _on_meta(build, *args, **kwargs) -> nn.Module:
    """Build a full-width model without allocating or initialising weights (shapes only)."""
    with torch.device("meta"):
        return build(*args, **kwargs)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("num_classes", [7, 400])
def test_r3d18_parameter_count_equals_torchvision(num_classes):
    ours = _on_meta(build_model, "r3d18", num_classes=num_classes)
    assert _count(ours) == _count(_on_meta(r3d_18, num_classes=num_classes))


def test_r3d18_state_dict_matches_torchvision_names_and_shapes():
    ours = _on_meta(build_model, "r3d18").state_dict()
    theirs = _on_meta(r3d_18, num_classes=7).state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].shape == value.shape, key


def _leaf_layers(model: nn.Module) -> list[tuple]:
    """(name, torch.nn base class, stride, padding, kernel, channels) of every leaf module."""
    rows = []
    for name, m in model.named_modules():
        if any(True for _ in m.children()):
            continue
        base = next(c.__name__ for c in type(m).__mro__ if c.__module__.startswith("torch.nn.modules"))
        rows.append((name, base, getattr(m, "stride", None), getattr(m, "padding", None), getattr(m, "kernel_size", None),
                     getattr(m, "in_channels", None), getattr(m, "out_channels", None)))
    return rows


def test_r3d18_same_layers_and_strides_as_torchvision():
    assert _leaf_layers(_on_meta(build_model, "r3d18")) == _leaf_layers(_on_meta(r3d_18, num_classes=7))


def test_r3d18_loads_torchvision_weights_and_gives_the_same_logits():
    torch.manual_seed(0)
    theirs = r3d_18(num_classes=5).eval()
    ours = build_model("r3d18", num_classes=5).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


def test_torchvision_weights_fit_the_tdrag_backbone():
    theirs = _on_meta(r3d_18, num_classes=7).state_dict()
    result = _on_meta(build_model, "tdrag").load_state_dict(theirs, strict=False, assign=True)
    assert set(result.unexpected_keys) == {"fc.weight", "fc.bias"}
    assert result.missing_keys and all(".2." in k or k.startswith("head.") for k in result.missing_keys)


def test_r3d18_time_and_space_per_stage():
    model = build_model("r3d18", width=8).eval()
    x = torch.randn(1, 3, 16, 64, 64)
    shapes = []
    with torch.no_grad():
        h = model.stem(x)
        shapes.append(tuple(h.shape[2:]))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            h = getattr(model, name)(h)
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(16, 32, 32), (8, 16, 32, 32), (16, 8, 16, 16), (32, 4, 8, 8), (64, 2, 4, 4)]


def test_stage_channels_scale_with_width():
    assert stage_channels(16) == (16, 32, 64, 128)
    stages = make_stages(16, (1, 1, 1, 1))
    assert [s[-1].conv2[0].out_channels for s in stages] == [16, 32, 64, 128]
    # Stage 1 keeps the shape, so only stages 2-4 need a projection shortcut.
    assert [s[0].downsample is not None for s in stages] == [False, True, True, True]


def test_init_keeps_bn_gamma_one_unless_zero_init_residual():
    default = R3D18(num_classes=7, width=8)
    zeroed = R3D18(num_classes=7, width=8, zero_init_residual=True)
    for block_default, block_zero in zip(
        (m for m in default.modules() if isinstance(m, BasicBlock)), (m for m in zeroed.modules() if isinstance(m, BasicBlock))
    ):
        assert torch.all(block_default.conv2[1].weight == 1)
        assert torch.all(block_zero.conv2[1].weight == 0)
        assert torch.all(block_zero.conv1[1].weight == 1)


def test_zero_init_residual_makes_blocks_start_as_identity_plus_relu():
    block = BasicBlock(8, 8)
    nn.init.zeros_(block.conv2[1].weight)
    block.eval()
    x = torch.randn(2, 8, 3, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_wrong_input_shape_is_a_clear_error():
    model = build_model("r3d18", width=8)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\).*got shape \(2, 1, 8, 32, 32\)"):
        model(torch.randn(2, 1, 8, 32, 32))
    with pytest.raises(ValueError, match="got shape"):
        model(torch.randn(3, 8, 32, 32))
