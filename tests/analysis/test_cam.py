"""analysis.attribution.cam: Grad-CAM++, XGrad-CAM and LayerCAM against values worked out by hand,
on TDRAG and r3d18 stages, through ``attribute`` with the other methods' call shape."""

from __future__ import annotations

import pytest
import torch

from analysis.attribution.attribute import attribute
from analysis.attribution.cam import gradcam_plus_plus_map, layer_activations_and_gradients, layercam_map, xgradcam_map
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


# --- pytorch-grad-cam (grad-cam 1.5.7, the dev extra) as an independent reference ----------------
#
# The library returns each clip's map ReLU'd and scaled to [0, 1] (min-max, float32); ours keep the
# logit's scale, so ours are scaled the same way before comparing. What differs by design (its
# cubic-spline upsampling, its Grad-CAM++ eps) is kept out: the maps are compared at the layer's
# own resolution, and Grad-CAM++ on logits scaled so that its eps is negligible (see cam.py).

LIBRARY_CLASSES = {"gradcam": "GradCAM", "gradcam_plus_plus": "GradCAMPlusPlus", "xgradcam": "XGradCAM",
                   "layercam": "LayerCAM"}


def min_max(cam: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` -> each clip's map scaled to [0, 1] (the library's normalisation, without its eps)."""
    flat = cam.flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low)).view_as(cam)


def library_maps(method: str, model: torch.nn.Module, x: torch.Tensor, target: list[int], layer: torch.nn.Module,
                 size: tuple[int, int, int] | None = None) -> torch.Tensor:
    """pytorch-grad-cam's maps ``(B, T, H, W)`` (float32 in [0, 1]), upsampled to ``size`` (the
    clip's by default; the layer's own size makes its zoom the identity)."""
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with getattr(grad_cam, LIBRARY_CLASSES[method])(model, [layer]) as cam:
        if size is not None:  # it reads the target size as (W, H, T) from the input's shape
            cam.get_target_width_height = lambda _input: tuple(size)[::-1]
        maps = cam(x, targets=[ClassifierOutputTarget(t) for t in target])
    model.zero_grad(set_to_none=True)  # it back-propagates into the parameters
    return torch.from_numpy(maps)


class SmallVideoCNN(torch.nn.Module):
    """``features`` (Conv3d 3x3x3, padding 1, ReLU) keeps the clip's ``(T, H, W)``, so neither side
    resamples; a second convolution makes the gradient vary by position, and the sum pooling with
    ``fc``'s weights scaled by 100 puts it at about 5 (the library's Grad-CAM++ eps, 1e-6 beside
    ``2 g^2``, is then negligible)."""

    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv3d(3, 6, 3, padding=1), torch.nn.ReLU())
        self.mix = torch.nn.Sequential(torch.nn.Conv3d(6, 6, 3, padding=1), torch.nn.ReLU())
        self.fc = torch.nn.Linear(6, classes)
        with torch.no_grad():
            self.fc.weight.mul_(100.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.mix(self.features(x)).sum(dim=(2, 3, 4)))


class ScaledLogits(torch.nn.Module):
    """``scale * model(x)``: gradients of order 1 at every layer, for the Grad-CAM++ comparison."""

    def __init__(self, model: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.model(x)


@pytest.mark.parametrize("method", list(LIBRARY_CLASSES))
def test_agrees_with_pytorch_grad_cam_through_attribute(method):
    """The public call (``attribute``, float32) against the library's whole pipeline, on a layer
    the size of the clip."""
    torch.manual_seed(0)
    model = SmallVideoCNN().eval()
    x, target = torch.randn(3, 3, 4, 6, 6), [0, 2, 3]
    ours = attribute(model, x, torch.tensor(target), method, layer="features")
    theirs = library_maps(method, model, x, target, model.features)
    assert ours.shape == theirs.shape == (3, 4, 6, 6)
    assert (theirs.flatten(1).amax(1) > 0.99).all()  # a real map each, not an empty one
    torch.testing.assert_close(min_max(ours), theirs, rtol=0, atol=1e-5)


def layer_resolution_maps(method: str, model: torch.nn.Module, x: torch.Tensor, target: list[int],
                          layer: torch.nn.Module) -> torch.Tensor:
    """Our map at the layer's resolution, ReLU'd: ``(B, T', H', W')`` (Grad-CAM: Captum's, which
    :func:`analysis.attribution.methods.gradcam` upsamples)."""
    if method == "gradcam":
        from captum.attr import LayerGradCam

        cam = LayerGradCam(model, layer).attribute(x, target=torch.tensor(target), relu_attributions=True)
        return cam[:, 0].detach()
    acts, grads = layer_activations_and_gradients(model, x, torch.tensor(target), layer)
    combine = {"gradcam_plus_plus": gradcam_plus_plus_map, "xgradcam": xgradcam_map, "layercam": layercam_map}[method]
    return combine(acts, grads).clamp(min=0)


@pytest.mark.parametrize("method", list(LIBRARY_CLASSES))
@pytest.mark.parametrize("layer", ["layer2", "layer4"])
@pytest.mark.parametrize(("variant", "dtype", "frames", "atol"),
                         [("tdrag", torch.float32, 8, 1e-5), ("r3d18", torch.float64, 16, 1e-6)])
def test_agrees_with_pytorch_grad_cam_on_video_models(method, layer, variant, dtype, frames, atol):
    """Tiny TDRAG (float32: its head runs in float32) and r3d18 (float64; the library's output is
    float32, hence 1e-6), at the layer's resolution. Grad-CAM++ runs on logits scaled by 1e5
    (median ``|g|`` of order 1e-3 here, the library's eps 1e-6 beside ``2 g^2``); its eps still
    reaches the few positions where ``0 < g`` is about 1e-3 (measured up to 6e-5), hence 1e-4."""
    torch.manual_seed(0)
    base = build_model(variant, num_classes=7, width=8, gru_hidden=8).to(dtype).eval()
    model = ScaledLogits(base, 1e5).eval() if method == "gradcam_plus_plus" else base
    atol = 1e-4 if method == "gradcam_plus_plus" else atol
    x = torch.randn(3, 3, frames, 32, 32, dtype=dtype)
    with torch.no_grad():  # the predicted class: a map with positive evidence at layer4 too
        target = base(x).argmax(1).tolist()
    module = base.get_submodule(layer)
    ours = layer_resolution_maps(method, model, x, target, module)
    theirs = library_maps(method, model, x, target, module, size=tuple(ours.shape[1:]))
    assert ours.shape[1:].numel() >= 8 and (theirs.flatten(1).amax(1) > 0.99).all()  # real maps, not one value
    torch.testing.assert_close(min_max(ours).float(), theirs, rtol=0, atol=atol)
