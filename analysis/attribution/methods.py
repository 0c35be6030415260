"""The Captum attribution methods for video clips, one function each, all with the same shape.

Every method takes the model (already in eval mode, see :func:`analysis.attribution.attribute.attribute`),
a clip batch ``x: (B, 3, T, H, W)`` (normalised float, on the model's device) and a target tensor
``(B,)`` of class indices, and returns a map of the *target logit* (``model(x)`` gives logits):

=================== ============ ==========================================================
method              shape        what the value is
=================== ============ ==========================================================
integrated_gradients (B, T, H, W) signed IG, summed over the 3 colour channels, so that
                                  ``map.sum()`` approximates ``f(x) - f(baseline)``
saliency            (B, T, H, W) ``|d logit / d x|`` summed over channels (>= 0)
smoothgrad          (B, T, H, W) saliency averaged over noisy copies (NoiseTunnel) (>= 0)
occlusion           (B, T, H, W) drop of the logit when a (t, h, w) window of all channels is
                                  replaced by the baseline, averaged over the windows that
                                  cover the voxel (signed: > 0 means the region helped)
gradcam             (B, T, H, W) LayerGradCam (ReLU'd) on a stage, trilinearly upsampled (>= 0)
gradcam_plus_plus   (B, T, H, W) Grad-CAM++ on a stage (:mod:`analysis.attribution.cam`) (>= 0)
xgradcam            (B, T, H, W) XGrad-CAM on a stage (>= 0)
layercam            (B, T, H, W) LayerCAM on a stage: a weight per position (>= 0)
guided_gradcam      (B, T, H, W) ``|guided backprop x Grad-CAM|`` summed over channels (>= 0)
frame_ablation      (B, T)       drop of the logit when one whole frame is replaced by the
                                  baseline (signed)
=================== ============ ==========================================================

Baselines are values in *normalised* space: the default 0.0 is the dataset mean colour (a
mean-grey clip), which is the reference of IG, occlusion and frame ablation here. A float, or a
tensor broadcastable to ``(B, 3, T, H, W)``, may be passed instead.

Memory is bounded by Captum's own batching: ``internal_batch_size`` (IG),
``nt_samples_batch_size`` (SmoothGrad), ``perturbations_per_eval`` (occlusion, frame ablation).
The defaults keep about 16 clips in one forward/backward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from analysis.attribution.cam import gradcam_plus_plus, layercam, resolve_layer, xgradcam
from analysis.attribution.contexts import cudnn_off_for_rnns, relus_not_inplace
from analysis.attribution.linear_input import input_layer, integrated_gradients_past_input

# Samples (clip copies) per forward/backward pass in the batched methods, by default.
DEFAULT_SAMPLES_PER_PASS = 16

BaselineLike = float | torch.Tensor


def _baseline(x: torch.Tensor, baseline: BaselineLike) -> torch.Tensor | float:
    """A Captum baseline: a float as is, a tensor moved to x's device/dtype and checked."""
    if isinstance(baseline, torch.Tensor):
        baseline = baseline.to(device=x.device, dtype=x.dtype)
        try:
            torch.broadcast_shapes(baseline.shape, x.shape)
        except RuntimeError as err:
            raise ValueError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to the clips "
                f"{tuple(x.shape)}"
            ) from err
        # Captum wants the batch dimension present (1 or B).
        while baseline.dim() < x.dim():
            baseline = baseline.unsqueeze(0)
        return baseline
    return float(baseline)


def _per_pass(batch: int, requested: int | None) -> int:
    """Samples per pass for Captum's batching: at least the batch size, by default ~16 clips."""
    if requested is None:
        return max(batch, DEFAULT_SAMPLES_PER_PASS)
    # Captum needs at least one step for the whole batch per pass (it warns and uses B otherwise).
    return max(batch, requested)


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    n_steps: int = 32,
    baseline: BaselineLike = 0.0,
    internal_batch_size: int | None = None,
    integration: str = "gausslegendre",
) -> torch.Tensor:
    """Integrated Gradients from ``baseline`` to ``x``: signed, channel-summed ``(B, T, H, W)``.

    Args:
        n_steps: points of the path integral (Gauss-Legendre by default).
        baseline: reference clip in normalised space (0.0 = mean colour).
        internal_batch_size: clip copies per forward/backward (default max(B, 16)).
        integration: Captum's ``method`` ("gausslegendre", "riemann_trapezoid", ...).

    Captum's ``IntegratedGradients``, except for a model that names the affine layer through which
    alone it reads the clip (``input_layer``, as tdrag's models do): then the gradients are taken
    past that layer, with the same result for about a third less work
    (:mod:`analysis.attribution.linear_input`).
    """
    from captum.attr import IntegratedGradients

    layer = input_layer(model)
    if layer is not None:  # the same maps with the path integral taken past the input layer
        return integrated_gradients_past_input(model, layer, x, target, _baseline(x, baseline), n_steps,
                                               _per_pass(x.shape[0], internal_batch_size), integration).sum(dim=1)
    with cudnn_off_for_rnns(model, x.device):
        attr = IntegratedGradients(model).attribute(
            x,
            baselines=_baseline(x, baseline),
            target=target,
            n_steps=n_steps,
            method=integration,
            internal_batch_size=_per_pass(x.shape[0], internal_batch_size),
        )
    return attr.sum(dim=1)


def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Gradient magnitude ``|d logit / d x|`` summed over channels: ``(B, T, H, W)``, >= 0."""
    from captum.attr import Saliency

    with cudnn_off_for_rnns(model, x.device):
        attr = Saliency(model).attribute(x, target=target, abs=True)
    return attr.sum(dim=1)


def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    nt_samples: int = 16,
    stdevs: float | None = None,
    nt_samples_batch_size: int | None = None,
    seed: int | None = 0,
) -> torch.Tensor:
    """SmoothGrad: saliency averaged over ``nt_samples`` noisy copies, ``(B, T, H, W)`` >= 0.

    Args:
        nt_samples: noisy copies per clip.
        stdevs: noise standard deviation in normalised units; default 0.15 x the batch's value
            range (Smilkov et al.'s 15 % noise level).
        nt_samples_batch_size: noisy copies per pass (default so that ~16 clips go per pass).
        seed: seeds the noise (through a forked RNG, so global RNG state is untouched); None
            leaves the RNG alone.
    """
    from captum.attr import NoiseTunnel, Saliency

    if stdevs is None:
        stdevs = 0.15 * float(x.detach().max() - x.detach().min())
    per_pass = nt_samples_batch_size
    if per_pass is None:
        per_pass = max(1, DEFAULT_SAMPLES_PER_PASS // x.shape[0])
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        with cudnn_off_for_rnns(model, x.device):
            attr = NoiseTunnel(Saliency(model)).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=nt_samples,
                nt_samples_batch_size=min(per_pass, nt_samples),
                stdevs=float(stdevs),
                target=target,
                abs=True,
            )
    return attr.sum(dim=1)


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    window: tuple[int, int, int] = (2, 16, 16),
    strides: tuple[int, int, int] | None = None,
    baseline: BaselineLike = 0.0,
    perturbations_per_eval: int | None = None,
) -> torch.Tensor:
    """3D occlusion: slide a ``(t, h, w)`` window over time and space, ``(B, T, H, W)`` signed.

    Args:
        window: the window in frames and pixels; it always covers all 3 channels (Captum's
            ``sliding_window_shapes`` is ``(3, t, h, w)``).
        strides: window steps (frames, pixels); default half the window (at least 1).
        baseline: what an occluded voxel becomes (0.0 = mean colour).
        perturbations_per_eval: occluded copies per forward (default so that ~16 clips go per
            pass).

    Cost: one forward per window position, i.e. about ``prod(size / stride)`` forwards per clip.
    """
    from captum.attr import Occlusion

    if len(window) != 3:
        raise ValueError(f"occlusion window must be (t, h, w), got {window}")
    if strides is None:
        strides = tuple(max(1, w // 2) for w in window)
    if len(strides) != 3:
        raise ValueError(f"occlusion strides must be (t, h, w), got {strides}")
    per_eval = perturbations_per_eval
    if per_eval is None:
        per_eval = max(1, DEFAULT_SAMPLES_PER_PASS // x.shape[0])
    # No backward pass here, so cuDNN may stay on.
    attr = Occlusion(model).attribute(
        x,
        sliding_window_shapes=(3, *window),
        strides=(3, *strides),
        baselines=_baseline(x, baseline),
        target=target,
        perturbations_per_eval=per_eval,
    )
    # The window spans all channels, so the 3 channel values are equal.
    return attr.mean(dim=1)


def gradcam(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    layer: str | nn.Module = "layer4",
    relu: bool = True,
) -> torch.Tensor:
    """Grad-CAM on a stage (default ``"layer4"``), trilinearly upsampled: ``(B, T, H, W)``.

    Args:
        layer: a submodule name (``"layer3"``, ``"layer4"``, dotted names allowed) or module.
        relu: keep only positive evidence (the usual Grad-CAM); False gives the signed map.
    """
    from captum.attr import LayerGradCam

    module = resolve_layer(model, layer)
    with cudnn_off_for_rnns(model, x.device):
        cam = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=relu)
    if cam.dim() != 5:
        raise ValueError(
            f"Grad-CAM on {layer!r} gave shape {tuple(cam.shape)}; expected a (B, 1, T', H', W') "
            "feature map (choose a convolutional stage)"
        )
    cam = F.interpolate(cam, size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)
    return cam[:, 0]


def guided_gradcam(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    layer: str | nn.Module = "layer4",
) -> torch.Tensor:
    """Guided Grad-CAM: ``|guided backprop x upsampled Grad-CAM|`` summed over channels.

    Guided backprop rewrites the gradient of ``nn.ReLU`` modules only (functional ``relu`` calls
    are left as plain gradients); in-place ReLUs are made out-of-place for the call.
    """
    from captum.attr import GuidedGradCam

    module = resolve_layer(model, layer)
    with relus_not_inplace(model), cudnn_off_for_rnns(model, x.device), warnings.catch_warnings():
        # Captum warns on every call that it sets (and later removes) ReLU hooks.
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        attr = GuidedGradCam(model, module).attribute(x, target=target, interpolate_mode="trilinear")
    if attr.shape != x.shape:
        raise ValueError(
            f"Guided Grad-CAM on {layer!r} could not be upsampled to the input "
            f"{tuple(x.shape)} (got {tuple(attr.shape)})"
        )
    return attr.abs().sum(dim=1)


def frame_ablation(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    baseline: BaselineLike = 0.0,
    perturbations_per_eval: int | None = None,
) -> torch.Tensor:
    """Keyframe importance: logit drop when one frame becomes the baseline, ``(B, T)`` signed."""
    from captum.attr import FeatureAblation

    frames = x.shape[2]
    # One feature per frame, broadcast over batch, channels and pixels.
    mask = torch.arange(frames, device=x.device).view(1, 1, frames, 1, 1)
    per_eval = perturbations_per_eval
    if per_eval is None:
        per_eval = max(1, DEFAULT_SAMPLES_PER_PASS // x.shape[0])
    attr = FeatureAblation(model).attribute(
        x,
        baselines=_baseline(x, baseline),
        target=target,
        feature_mask=mask,
        perturbations_per_eval=min(per_eval, frames),
    )
    return attr[:, 0, :, 0, 0]


METHODS: dict[str, Callable[..., torch.Tensor]] = {
    "integrated_gradients": integrated_gradients,
    "saliency": saliency,
    "smoothgrad": smoothgrad,
    "occlusion": occlusion,
    "gradcam": gradcam,
    "gradcam_plus_plus": gradcam_plus_plus,
    "xgradcam": xgradcam,
    "layercam": layercam,
    "guided_gradcam": guided_gradcam,
    "frame_ablation": frame_ablation,
}

#: How each method is named in figures and animations.
TITLES: dict[str, str] = {
    "integrated_gradients": "Integrated Gradients",
    "saliency": "saliency",
    "smoothgrad": "SmoothGrad",
    "occlusion": "occlusion",
    "gradcam": "Grad-CAM",
    "gradcam_plus_plus": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "guided_gradcam": "guided Grad-CAM",
    "frame_ablation": "frame ablation",
}

# Methods whose maps are (B, T); all others give (B, T, H, W).
FRAME_METHODS = frozenset({"frame_ablation"})
# Methods that read a network stage (their ``layer`` option); the others explain the input directly.
LAYER_METHODS = frozenset({"gradcam", "gradcam_plus_plus", "xgradcam", "layercam", "guided_gradcam"})
# The class activation map family: a weighted sum of a stage's activations.
CAM_METHODS = frozenset({"gradcam", "gradcam_plus_plus", "xgradcam", "layercam"})
