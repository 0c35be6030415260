"""analysis.attribution.attribute / analysis.attribution.methods: shapes, locality, completeness, modes."""

from __future__ import annotations

import pytest
import torch

from analysis.attribution.contexts import cudnn_off_for_rnns
from analysis.attribution.attribute import METHOD_NAMES, NonFiniteAttribution, attribute, attribute_dataset
from analysis.attribution.completeness import completeness_gap
from analysis.attribution.methods import LAYER_METHODS
from tdrag.models.registry import build_model
from tests.analysis.attribution_models import (
    FRAME,
    H,
    T,
    W,
    RegionModel,
    region_clips,
    region_mask,
    tiny_conv_gru,
)

@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random clips whatever ran before it."""
    torch.manual_seed(0)


# Options that keep every method to a fraction of a second on 8x8 clips.
FAST = {
    "integrated_gradients": {"n_steps": 8},
    "saliency": {},
    "smoothgrad": {"nt_samples": 4},
    "occlusion": {"window": (1, 4, 4)},
    # Signed: a random model's ReLU'd Grad-CAM may be all zeros, legitimately.
    "gradcam": {"layer": "layer3", "relu": False},
    "gradcam_plus_plus": {"layer": "layer3", "relu": False},
    "xgradcam": {"layer": "layer3", "relu": False},
    "layercam": {"layer": "layer3", "relu": False},
    "guided_gradcam": {"layer": "layer3"},
    "frame_ablation": {},
}


def expected_shape(method: str, x: torch.Tensor) -> tuple[int, ...]:
    b, _, t, h, w = x.shape
    return (b, t) if method == "frame_ablation" else (b, t, h, w)


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_shape_finite_and_mode_restored(method):
    model = tiny_conv_gru().train()
    x = torch.randn(2, 3, T, H, W)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    maps = attribute(model, x, torch.tensor([0, 2]), method, **FAST[method])
    assert maps.shape == expected_shape(method, x)
    assert maps.dtype == torch.float32 and torch.isfinite(maps).all()
    if method != "guided_gradcam":  # its ReLU'd Grad-CAM factor may be 0 on a random model
        assert maps.abs().sum() > 0
    assert all(m.training for m in model.modules())  # train mode given back
    for k, v in model.state_dict().items():  # eval mode used: BN running stats untouched
        assert torch.equal(v, before[k]), k
    assert all(m.inplace for m in model.modules() if isinstance(m, torch.nn.ReLU))


def test_mixed_modes_are_restored_per_module():
    model = tiny_conv_gru().train()
    model.layer2.eval()
    attribute(model, torch.randn(1, 3, T, H, W), 1, "saliency")
    assert model.training and model.layer1.training and not model.layer2.training


def test_eval_mode_is_what_gets_attributed():
    """The map equals the one of the model in eval mode (BN running stats, no batch stats)."""
    model = tiny_conv_gru().train()
    x = torch.randn(2, 3, T, H, W)
    got = attribute(model, x, 1, "saliency")
    model.eval()
    xg = x.clone().requires_grad_(True)
    model(xg)[:, 1].sum().backward()
    assert torch.allclose(got, xg.grad.abs().sum(1), atol=1e-6)


@pytest.mark.parametrize(
    "method", ["saliency", "integrated_gradients", "occlusion", "smoothgrad", "guided_gradcam"]
)
def test_maps_concentrate_on_the_known_region(method):
    model = RegionModel()
    x = region_clips(2)
    opts = {
        "occlusion": {"window": (1, 2, 2), "strides": (1, 2, 2)},
        "integrated_gradients": {"n_steps": 16},
        "guided_gradcam": {"layer": "layer1"},
    }
    maps = attribute(model, x, 1, method, **opts.get(method, {})).abs()
    share = (maps * region_mask()).flatten(1).sum(1) / maps.flatten(1).sum(1)
    assert (share > 0.5).all(), share
    # The single largest value sits in the region of the known frame.
    flat = maps.flatten(1).argmax(1)
    assert region_mask().flatten()[flat].all()


def test_frame_ablation_points_at_the_known_frame():
    maps = attribute(RegionModel(), region_clips(3), 1, "frame_ablation")
    assert maps.shape == (3, T)
    assert (maps.abs().argmax(1) == FRAME).all()
    # Class 1 rises with the bright region, so losing that frame lowers the logit.
    assert (maps[:, FRAME] > 0).all()


def test_gradcam_upsamples_to_the_clip_and_follows_the_layer():
    model = tiny_conv_gru()
    x = torch.randn(1, 3, T, H, W)
    a3 = attribute(model, x, 0, "gradcam", layer="layer3")
    a1 = attribute(model, x, 0, "gradcam", layer="layer1")
    assert a3.shape == a1.shape == (1, T, H, W)
    assert (a3 >= 0).all() and (a1 >= 0).all()
    assert not torch.allclose(a3, a1)
    with pytest.raises(ValueError, match="layer9"):
        attribute(model, x, 0, "gradcam", layer="layer9")


def test_guided_gradcam_with_inplace_relus_matches_out_of_place():
    model = tiny_conv_gru()
    x = torch.randn(1, 3, T, H, W)
    inplace = attribute(model, x, 2, "guided_gradcam", layer="layer4")
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    plain = attribute(model, x, 2, "guided_gradcam", layer="layer4")
    assert torch.allclose(inplace, plain, atol=1e-7)


def test_integrated_gradients_completeness_on_a_smooth_model():
    model = RegionModel()  # Softplus: smooth, and non-linear over the path
    x = region_clips(2)
    table = completeness_gap(model, x, torch.tensor([1, 2]), n_steps=64)
    assert (table["output_difference"].abs() > 0.1).all()  # something to explain
    assert (table["gap"] < 0.01).all(), table
    # With 2 trapezoid steps the path integral is visibly worse: the check can fail.
    coarse = completeness_gap(model, x, torch.tensor([1, 2]), n_steps=2, integration="riemann_trapezoid")
    assert (coarse["gap"] > table["gap"]).all()


def test_ig_internal_batching_gives_the_same_maps():
    model = RegionModel()
    x = region_clips(2)
    whole = attribute(model, x, 1, "integrated_gradients", n_steps=8, internal_batch_size=16)
    chunked = attribute(model, x, 1, "integrated_gradients", n_steps=8, internal_batch_size=2)
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_targets_int_and_tensor_agree():
    model = tiny_conv_gru()
    x = torch.randn(2, 3, T, H, W)
    assert torch.equal(attribute(model, x, 1, "saliency"), attribute(model, x, torch.tensor([1, 1]), "saliency"))
    with pytest.raises(ValueError, match="class indices"):
        attribute(model, x, torch.tensor([0, 1, 2]), "saliency")


def test_bad_inputs_are_named():
    model = tiny_conv_gru()
    x = torch.randn(1, 3, T, H, W)
    with pytest.raises(ValueError, match="unknown attribution method 'lime'"):
        attribute(model, x, 0, "lime")
    with pytest.raises(TypeError, match="saliency does not take option.*n_steps"):
        attribute(model, x, 0, "saliency", n_steps=3)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        attribute(model, x[:, :2], 0, "saliency")
    with pytest.raises(ValueError, match="uint8"):
        attribute(model, (x * 50).to(torch.uint8), 0, "saliency")


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_real_tdrag_in_eval_mode_with_its_gru(method):
    torch.manual_seed(0)
    model = build_model("tdrag", num_classes=7, width=8, gru_hidden=8).train()
    x = torch.randn(1, 3, 8, 16, 16)
    opts = dict(FAST[method])
    if method == "occlusion":
        opts = {"window": (4, 8, 8), "strides": (4, 8, 8)}
    if method in LAYER_METHODS:
        opts = {"layer": "layer4"}
    maps = attribute(model, x, 3, method, **opts)
    assert maps.shape == expected_shape(method, x)
    assert torch.isfinite(maps).all()
    if method not in LAYER_METHODS:  # a ReLU'd CAM may be 0 on a random model
        assert maps.abs().sum() > 0
    assert model.training


def test_attribute_dataset_over_a_tensor_and_a_loader():
    model = tiny_conv_gru()
    x = torch.randn(5, 3, T, H, W)
    labels = torch.tensor([0, 1, 2, 0, 1])
    res = attribute_dataset(model, x, "saliency", labels=labels, batch_size=2, progress=False)
    assert res.maps.shape == (5, T, H, W) and res.rows.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(res.targets, labels)
    assert torch.allclose(res.maps[3:], attribute(model, x[3:], labels[3:], "saliency"))
    assert res.probabilities.shape == (5, 3) and torch.allclose(res.probabilities.sum(1), torch.ones(5))
    assert list(res.to_frame().columns) == ["row", "label", "prediction", "target", "target_probability"]

    pred = attribute_dataset(model, x, "frame_ablation", targets="prediction", batch_size=4, progress=False)
    assert torch.equal(pred.targets, pred.predictions) and pred.maps.shape == (5, T)

    # A loader of (float clips, labels, rows) batches keeps the rows it is given.
    loader = [(x[:3], labels[:3], torch.tensor([10, 11, 12])), (x[3:], labels[3:], torch.tensor([13, 14]))]
    res2 = attribute_dataset(model, loader, "saliency", batch_size=2, progress=False)
    assert res2.rows.tolist() == [10, 11, 12, 13, 14]
    assert torch.allclose(res2.maps, res.maps)


class NaNForBrightClips(torch.nn.Module):
    """Three logits of a clip's mean; a clip whose first voxel is > 100 gets NaN logits and maps."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        poison = torch.where(x[:, 0, 0, 0, 0] > 100, torch.tensor(float("nan")), torch.tensor(1.0))
        return self.fc(x.mean((1, 2, 3, 4))[:, None] * poison[:, None])


def test_attribute_dataset_skips_only_clips_with_non_finite_maps():
    model = NaNForBrightClips()
    x = torch.randn(5, 3, T, H, W)
    x[1, 0, 0, 0, 0] = 1000.0  # clip 1's map is NaN; its batch neighbours are kept
    res = attribute_dataset(model, x, "saliency", targets="prediction", batch_size=2, progress=False)
    assert res.rows.tolist() == [0, 2, 3, 4]
    assert res.skipped == [{"rows": [1], "reason": "NonFiniteAttribution: non-finite saliency values for row 1"}]
    assert torch.isfinite(res.maps).all() and res.maps.shape == (4, T, H, W)
    with pytest.raises(NonFiniteAttribution, match="row 1"):
        attribute_dataset(model, x, "saliency", targets="prediction", batch_size=2, progress=False, strict=True)


class Failing(torch.nn.Module):
    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.fc = torch.nn.Linear(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


@pytest.mark.parametrize("error", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("cudnn RNN backward can only be called in training mode"),
], ids=["cuda_oom", "cudnn_rnn"])
def test_attribute_dataset_lets_pass_wide_errors_propagate(error):
    x = torch.randn(2, 3, T, H, W)
    with pytest.raises(type(error), match=str(error).split(".")[0]):
        attribute_dataset(Failing(error), x, "saliency", targets="prediction", progress=False)


def test_attribute_dataset_a_bad_target_is_an_error_not_a_skip():
    model = tiny_conv_gru()
    x = torch.randn(3, 3, T, H, W)
    with pytest.raises((IndexError, RuntimeError, AssertionError)):
        attribute_dataset(model, x, "saliency", labels=torch.tensor([0, 1, 7]), batch_size=2, progress=False)


def _captum_direct(method: str, model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The same Captum class called directly, with the options ``attribute`` is given below."""
    import captum.attr as ca
    import torch.nn.functional as F

    if method == "integrated_gradients":
        return ca.IntegratedGradients(model).attribute(x, baselines=0.0, target=target, n_steps=8, method="gausslegendre",
                                                       internal_batch_size=16).sum(1)
    if method == "saliency":
        return ca.Saliency(model).attribute(x, target=target, abs=True).sum(1)
    if method == "smoothgrad":
        torch.manual_seed(3)
        return ca.NoiseTunnel(ca.Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=4, nt_samples_batch_size=2,
                                                           stdevs=0.3, target=target, abs=True).sum(1)
    if method == "occlusion":
        return ca.Occlusion(model).attribute(x, sliding_window_shapes=(3, 2, 4, 4), strides=(3, 1, 2, 2), baselines=0.0,
                                             target=target, perturbations_per_eval=3).mean(1)
    if method == "gradcam":
        cam = ca.LayerGradCam(model, model.layer3).attribute(x, target=target, relu_attributions=False)
        return F.interpolate(cam, size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)[:, 0]
    if method == "guided_gradcam":
        for m in model.modules():
            if isinstance(m, torch.nn.ReLU):
                m.inplace = False
        return ca.GuidedGradCam(model, model.layer4).attribute(x, target=target, interpolate_mode="trilinear").abs().sum(1)
    if method == "frame_ablation":
        mask = torch.arange(x.shape[2]).view(1, 1, -1, 1, 1)
        return ca.FeatureAblation(model).attribute(x, baselines=0.0, target=target, feature_mask=mask,
                                                   perturbations_per_eval=2)[:, 0, :, 0, 0]
    raise AssertionError(method)


SAME_AS_CAPTUM = {
    "integrated_gradients": {"n_steps": 8, "internal_batch_size": 16},
    "saliency": {},
    "smoothgrad": {"nt_samples": 4, "nt_samples_batch_size": 2, "stdevs": 0.3, "seed": 3},
    "occlusion": {"window": (2, 4, 4), "strides": (1, 2, 2), "perturbations_per_eval": 3},
    "gradcam": {"layer": "layer3", "relu": False},
    "guided_gradcam": {"layer": "layer4"},  # this random model's ReLU'd Grad-CAM is 0 at layer3
    "frame_ablation": {"perturbations_per_eval": 2},
}


@pytest.mark.parametrize("method", sorted(SAME_AS_CAPTUM))
def test_each_method_equals_its_captum_class_called_directly(method):
    """Same model (random, non-trivial BatchNorm statistics, eval mode), same inputs and targets.
    Captum has no Grad-CAM++, XGrad-CAM or LayerCAM: tests/analysis/test_cam.py checks them by hand."""
    import copy

    assert set(SAME_AS_CAPTUM) | {"gradcam_plus_plus", "xgradcam", "layercam"} == set(METHOD_NAMES)
    model = tiny_conv_gru()
    x = torch.randn(2, 3, T, H, W)
    target = torch.tensor([2, 0])
    ours = attribute(model, x, target, method, **SAME_AS_CAPTUM[method])
    reference = copy.deepcopy(model).eval()
    expected = _captum_direct(method, reference, x.clone().requires_grad_(True), target).detach()
    assert ours.shape == expected.shape
    scale = expected.abs().max()
    assert scale > 0, "a reference that is all zeros would compare nothing"
    # Relative to the map's own scale (guided backprop's values are ~1e-9 here).
    torch.testing.assert_close(ours / scale, expected.float() / scale, rtol=1e-5, atol=1e-5)


def test_attribute_dataset_on_uint8_cache_batches():
    augment = pytest.importorskip("tdrag.data.augment")
    model = tiny_conv_gru()
    clips_u8 = torch.randint(0, 256, (3, T, 10, 10, 3), dtype=torch.uint8)
    loader = [(clips_u8, torch.tensor([0, 1, 2]), torch.tensor([4, 5, 6]))]
    res = attribute_dataset(model, loader, "gradcam", crop=H, layer="layer3", progress=False)
    assert res.maps.shape == (3, T, H, W)
    expected = attribute(model, augment.eval_transform(clips_u8, crop=H), torch.tensor([0, 1, 2]), "gradcam", layer="layer3")
    assert torch.allclose(res.maps, expected, atol=1e-6)


def _record_cudnn_flag(module: torch.nn.Module, seen: list) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda m, a, o: seen.append(torch.backends.cudnn.enabled))


def test_cudnn_is_off_only_inside_the_rnn_forward():
    """The mechanism, checked on the CPU by naming a CUDA device (the flag is what is tested)."""
    model = tiny_conv_gru()
    in_gru, in_conv = [], []
    hooks = [_record_cudnn_flag(model.gru, in_gru), _record_cudnn_flag(model.layer4, in_conv)]
    assert torch.backends.cudnn.enabled
    with cudnn_off_for_rnns(model, "cuda"):
        model(torch.randn(1, 3, T, H, W))
        assert torch.backends.cudnn.enabled  # back on between RNN calls
    for h in hooks:
        h.remove()
    assert in_gru == [False] and in_conv == [True]
    assert torch.backends.cudnn.enabled
    # No hooks are left behind, and the CPU path changes nothing.
    assert not model.gru._forward_pre_hooks and not model.gru._forward_hooks
    with cudnn_off_for_rnns(model, "cpu"):
        assert not model.gru._forward_pre_hooks


def test_cudnn_flag_restored_when_the_forward_fails():
    model = tiny_conv_gru()
    with pytest.raises(RuntimeError):
        with cudnn_off_for_rnns(model, "cuda"):
            model.gru(torch.randn(1, 2, 99))  # wrong feature size: fails inside the GRU
    assert torch.backends.cudnn.enabled and not model.gru._forward_pre_hooks


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["saliency", "integrated_gradients", "gradcam", "gradcam_plus_plus", "xgradcam",
                                    "layercam", "guided_gradcam", "smoothgrad"])
def test_cuda_eval_mode_gru_backward_with_cudnn_off(method):
    """cuDNN refuses an eval-mode RNN backward; attribute() must avoid it and match the CPU.

    SmoothGrad's noise is drawn on the input's device, so CUDA and CPU noise differ: the
    comparison runs it with zero noise (every copy is the clip itself) and the noisy call is only
    checked to run. TF32 is off during the comparison (it rounds convolutions to 10-bit mantissas).
    """
    torch.manual_seed(0)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    model = build_model("tdrag", num_classes=7, width=8, gru_hidden=8).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    opts = {"integrated_gradients": {"n_steps": 8}, "smoothgrad": {"nt_samples": 4, "stdevs": 0.0}}.get(method, {})
    if method in LAYER_METHODS:
        opts = {"layer": "layer4"}
    cpu = attribute(model, x, 2, method, **opts)
    assert torch.backends.cudnn.enabled
    gpu = attribute(model.cuda(), x.cuda(), 2, method, **opts)
    assert torch.backends.cudnn.enabled  # switched back on after the call
    assert gpu.is_cuda and torch.isfinite(gpu).all()
    scale = cpu.abs().max()
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3 * float(scale), rtol=1e-2)
    if method == "smoothgrad":
        noisy = attribute(model, x.cuda(), 2, method, nt_samples=4)
        assert noisy.is_cuda and torch.isfinite(noisy).all()
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
