"""Integrated Gradients taken past a model's linear input layer (analysis.attribution.linear_input)
against Captum's IntegratedGradients on the whole model, and the BatchNorm folding it uses.

The models run in float64, where the identity is exact: what is left is Captum's own rounding (it
weighs the gradients with float32 step sizes, about 1e-8 of the map's scale). In float32 both sides
carry ~1e-7 rounding, which a ReLU whose input passes near 0 on the path can turn into a visible
difference; that is a property of IG on ReLU networks, not of either implementation.
"""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import IntegratedGradients

from analysis.attribution.linear_input import fold_batchnorms, input_layer
from analysis.attribution.methods import integrated_gradients
from tests.models.signal_models import signal_model

CLIPS = (3, 3, 8, 16, 16)


def _captum(model, x, target, baseline, n_steps, integration):
    reference = copy.deepcopy(model)
    attr = IntegratedGradients(reference).attribute(x.clone().requires_grad_(True), baselines=baseline, target=target,
                                                    n_steps=n_steps, method=integration, internal_batch_size=64)
    return attr.sum(dim=1).detach()


def _close_at_scale(ours, expected, tolerance=1e-6):
    scale = expected.abs().max()
    assert scale > 0, "a reference that is all zeros would compare nothing"
    assert ours.shape == expected.shape
    assert float((ours - expected).abs().max() / scale) < tolerance


@pytest.mark.parametrize("variant, options", [
    ("tdrag", {}), ("tdrag_no_gru", {}), ("tdrag_no_attention", {}), ("r3d18", {}),
    ("tdrag", {"causal_time": True}), ("tdrag", {"local_time": True, "temporal_strides": [1, 1, 1, 1]}),
])
def test_equals_captum_on_the_whole_model(variant, options):
    model = signal_model(variant, **options).double()
    assert input_layer(model) == "stem.0"
    x = torch.randn(*CLIPS, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([1, 4, 6])
    ours = integrated_gradients(model, x.clone().requires_grad_(True), target, n_steps=8, internal_batch_size=5)
    _close_at_scale(ours, _captum(model, x, target, 0.0, 8, "gausslegendre"))


@pytest.mark.parametrize("integration", ["riemann_trapezoid", "riemann_left"])
def test_tensor_baseline_and_other_rules(integration):
    model = signal_model("tdrag").double()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(*CLIPS, dtype=torch.float64, generator=gen)
    baseline = 0.3 * torch.randn(1, 3, 8, 1, 1, dtype=torch.float64, generator=gen)  # a colour per frame
    target = torch.tensor([0, 2, 5])
    ours = integrated_gradients(model, x.clone().requires_grad_(True), target, n_steps=6, baseline=baseline,
                                integration=integration)
    _close_at_scale(ours, _captum(model, x, target, baseline, 6, integration))


def test_completeness_in_float64():
    """The maps sum to f(x) - f(baseline) up to the quadrature's error, which shrinks with the steps."""
    model = signal_model("tdrag").double()
    x = torch.randn(2, 3, 8, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    target = torch.tensor([3, 1])
    with torch.no_grad():
        rows = torch.arange(2)
        gap = model(x)[rows, target] - model(torch.zeros_like(x))[rows, target]
    errors = [float((integrated_gradients(model, x.clone().requires_grad_(True), target, n_steps=n).sum(dim=(1, 2, 3))
                     - gap).abs().max()) for n in (4, 64)]
    assert errors[1] < errors[0]
    assert errors[1] < 1e-2 * float(gap.abs().max())


def test_the_callers_model_is_left_as_it_was():
    model = signal_model("tdrag")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    integrated_gradients(model, torch.randn(2, 3, 8, 16, 16).requires_grad_(True), torch.tensor([0, 1]), n_steps=4)
    assert dict(model.named_modules()) == modules
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.grad is not None for p in model.parameters())


def test_folded_convolution_equals_convolution_then_batchnorm():
    model = signal_model("tdrag")
    x = torch.randn(2, 3, 8, 16, 16)
    with torch.no_grad():
        expected = model.stem[1](model.stem[0](x))
        folded = fold_batchnorms(copy.deepcopy(model))
        assert isinstance(folded.stem[1], torch.nn.Identity)
        assert torch.allclose(folded.stem[0](x), expected, atol=1e-5)
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_a_training_mode_batchnorm_is_not_folded():
    model = signal_model("r3d18").train()
    folded = fold_batchnorms(copy.deepcopy(model))
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules()) == \
        sum(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())


def test_a_model_without_a_declared_input_layer_has_none():
    assert input_layer(torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1))) is None


@pytest.mark.gpu
def test_equals_captum_on_cuda():
    """The same check on the GPU (float64: no TF32 rounding), the GRU run with cuDNN off as attribution needs."""
    model = signal_model("tdrag").double().cuda()
    x = torch.randn(*CLIPS, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).cuda()
    target = torch.tensor([1, 4, 6]).cuda()
    ours = integrated_gradients(model, x.clone().requires_grad_(True), target, n_steps=8, internal_batch_size=5)
    assert ours.is_cuda and torch.backends.cudnn.enabled
    with torch.backends.cudnn.flags(enabled=False):  # Captum's eval-mode GRU backward needs it off
        expected = _captum(model, x, target, 0.0, 8, "gausslegendre")
    _close_at_scale(ours, expected)
