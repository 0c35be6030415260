"""analysis.attribution.cam: Grad-CAM++, XGrad-CAM and LayerCAM against values worked out by hand,
on TDRAG and r3d18 stages, through ``attribute`` with the other methods' call shape."""

from __future__ import annotations

import pytest
import torch

from analysis.attribution.attribute import attribute
from analysis.attribution.cam import layer_activations_and_gradients
from tdrag.models.registry import build_model
from tests.analysis.attribution_models import SquareAndSumModel

CAMS = ("gradcam_plus_plus", "xgradcam", "layercam")


def hand_clip() -> torch.Tensor:
    """One clip ``(1, 3, T=2, H=1, W=1)``: two positions (the two keyframes), A_0 = [1, 2], A_1 = [1, 3]."""
    x = torch.zeros(1, 3, 2, 1, 1)
    x[0, 0, :, 0, 0] = torch.tensor([1.0, 2.0])
    x[0, 1, :, 0, 0] = torch.tensor([1.0, 3.0])
    return x


# Class 0: g_0 = A_0 = [1, 2], g_1 = [1, 1]; sums over both positions S_0 = 3, S_1 = 4.
#
# Grad-CAM++: alpha = g^2 / (2 g^2 + S g^3)
#   channel 0: 1 / (2 + 3) = 1/5 at t0, 4 / (8 + 3 * 8) = 1/8 at t1; w_0 = 1/5 * 1 + 1/8 * 2 = 0.45
#   channel 1: 1 / (2 + 4) = 1/6 at both;                        w_1 = 1/6 + 1/6 = 1/3
#   map = 0.45 * [1, 2] + 1/3 * [1, 3] = [0.45 + 1/3, 0.9 + 1]
# XGrad-CAM: w_0 = (1/3) * 1 + (2/3) * 2 = 5/3, w_1 = (1/4) * 1 + (3/4) * 1 = 1
#   map = 5/3 * [1, 2] + [1, 3] = [8/3, 19/3]
# LayerCAM: relu(g) * A summed over channels = [1 * 1 + 1 * 1, 2 * 2 + 1 * 3] = [2, 7]
CLASS_0 = {
    "gradcam_plus_plus": [0.45 + 1 / 3, 0.9 + 1.0],
    "xgradcam": [8 / 3, 19 / 3],
    "layercam": [2.0, 7.0],
}
# Class 1: g_0 = 0, g_1 = -1.
# Grad-CAM++: relu(g) = 0 everywhere, so every weight is 0: [0, 0] with or without the ReLU.
# XGrad-CAM: w_1 = (1/4 + 3/4) * -1 = -1, map = -[1, 3]; ReLU'd [0, 0].
# LayerCAM: relu(-1) = 0: [0, 0].
CLASS_1_SIGNED = {"gradcam_plus_plus": [0.0, 0.0], "xgradcam": [-1.0, -3.0], "layercam": [0.0, 0.0]}


@pytest.mark.parametrize("method", CAMS)
def test_values_worked_out_by_hand(method):
    model = SquareAndSumModel()
    x = hand_clip().repeat(2, 1, 1, 1, 1)
    maps = attribute(model, x, torch.tensor([0, 1]), method, layer="features")
    assert maps.shape == (2, 2, 1, 1)  # (B, T, H, W): the layer keeps the clip's size, nothing to upsample
    torch.testing.assert_close(maps[0, :, 0, 0], torch.tensor(CLASS_0[method]))
    torch.testing.assert_close(maps[1, :, 0, 0], torch.zeros(2))  # the ReLU keeps positive evidence only
    signed = attribute(model, x, torch.tensor([0, 1]), method, layer="features", relu=False)
    torch.testing.assert_close(signed[1, :, 0, 0], torch.tensor(CLASS_1_SIGNED[method]))


def test_each_clip_gets_its_own_gradient():
    model = SquareAndSumModel()
    x = torch.cat([hand_clip(), 2 * hand_clip()])
    acts, grads = layer_activations_and_gradients(model, x, torch.tensor([0, 0]), "features")
    torch.testing.assert_close(acts, x[:, :2])
    torch.testing.assert_close(grads[:, 0], x[:, 0])  # g_0 = A_0, clip by clip
    torch.testing.assert_close(grads[:, 1], torch.ones_like(grads[:, 1]))


def test_a_constant_gradient_makes_xgradcam_equal_gradcam_up_to_scale():
    """With g constant per channel, XGrad-CAM's weight is g_k (its activation shares sum to 1) and
    Grad-CAM's is g_k too (the mean gradient): the two maps agree."""
    model = SquareAndSumModel()
    x = hand_clip()
    x[0, 0] = 0.0  # channel 0 silent: only channel 1 (constant gradient 1) counts
    torch.testing.assert_close(attribute(model, x, 0, "xgradcam", layer="features"),
                               attribute(model, x, 0, "gradcam", layer="features"))


@pytest.mark.parametrize("method", CAMS)
@pytest.mark.parametrize("variant", ["tdrag", "r3d18"])
def test_runs_on_every_stage_of_tdrag_and_r3d18(method, variant):
    torch.manual_seed(0)
    model = build_model(variant, num_classes=7, width=8, gru_hidden=8).train()
    x = torch.randn(2, 3, 8, 16, 16)
    for layer in ("layer2", "layer3", "layer4", "layer3.1"):
        maps = attribute(model, x, torch.tensor([3, 1]), method, layer=layer)
        assert maps.shape == (2, 8, 16, 16) and torch.isfinite(maps).all() and (maps >= 0).all(), layer
    assert model.training  # eval mode used, train mode given back
    signed = attribute(model, x, torch.tensor([3, 1]), method, layer="layer3", relu=False)
    assert signed.abs().sum() > 0


def test_a_layer_that_is_not_a_video_feature_map_is_named():
    model = build_model("tdrag", num_classes=7, width=8, gru_hidden=8)
    x = torch.randn(1, 3, 8, 16, 16)
    with pytest.raises(ValueError, match="layer9"):
        attribute(model, x, 0, "layercam", layer="layer9")
    with pytest.raises(ValueError, match=r"\(B, K, T', H', W'\)"):
        attribute(model, x, 0, "xgradcam", layer=[n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1])
