"""The class activation map family on video: Grad-CAM++, XGrad-CAM and LayerCAM on 5-D activations.

Captum has Grad-CAM (:func:`analysis.attribution.methods.gradcam`) but not its successors;
pytorch-grad-cam has them, 5-D included, and is our test reference (see the end). Here each works
on the ``(B, K, T', H', W')`` output of any chosen layer of a video model (a stage of TDRAG or
r3d18, ``"layer3"``, ``"layer4.1"``, ...), sums over time as well as space, and is upsampled to the
clip like Grad-CAM: ``(B, T, H, W)``, ReLU'd (>= 0) unless ``relu=False``.

With ``A`` the layer's activations and ``g = d logit_target / d A`` (one backward pass), channel
``k`` and position ``p = (t, h, w)``, sums over every position:

- **Grad-CAM++** (Chattopadhyay et al., WACV 2018; the closed form for an exponential of the
  logit, as pytorch-grad-cam uses it): ``alpha_kp = g_kp^2 / (2 g_kp^2 + (sum_q A_kq) g_kp^3)``
  (0 where the denominator is 0), ``w_k = sum_p alpha_kp relu(g_kp)``, map ``sum_k w_k A_k``.
- **XGrad-CAM** (Fu et al., BMVC 2020): ``w_k = sum_p (A_kp / sum_q A_kq) g_kp`` (0 where
  ``sum_q A_kq`` is 0), map ``sum_k w_k A_k``.
- **LayerCAM** (Jiang et al., IEEE TIP 2021): a weight per position, map
  ``sum_k relu(g_kp) A_kp``; it keeps fine detail at shallow layers.

The layer's output is read with a forward hook for the one call (Captum's Grad-CAM reads it the
same way): the layer must run once per forward pass and return one tensor.

**Why our own and not pytorch-grad-cam.** grad-cam 1.5.7 (``pytorch_grad_cam``) runs these methods
on 5-D activations too, sums over ``(T', H', W')`` as we do, and is the independent reference of
``tests/analysis/test_cam.py``: with each map ReLU'd and scaled per clip to [0, 1] (its output),
Grad-CAM, XGrad-CAM and LayerCAM agree with ours to 5e-7 at the layer's resolution, on a tiny
TDRAG (float32) and an r3d18 (float64), layer2 and layer4. We keep this module because the library
does a different job around the same formulas:

- Its Grad-CAM++ adds ``1e-6`` to the denominator of ``alpha``. That is the size of ``2 g^2`` at
  these models' gradients (median ``|g|`` 5e-4 to 2e-3 at layer2..layer4), so it moves the [0, 1]
  maps by up to 0.06-0.24 there; ours is the closed form, ``1 / (2 + S g)`` where ``g != 0``
  (jacobgil/pytorch-grad-cam#236 notes the simplification). On logits scaled by 1e5 the two agree
  to 6e-5, the rest being its eps at the few positions where ``g`` is still about 1e-3.
- It returns only ReLU'd maps scaled per clip to [0, 1], as float32 numpy. Our maps keep their
  scale (in the target logit's units, as Captum's Grad-CAM, so clips and classes can be
  compared) and ``relu=False`` gives the signed map.
- It upsamples on the CPU with ``scipy.ndimage.zoom`` (cubic spline on a corner-aligned grid,
  overshoot clipped, then rescaled); ours stays on the model's device and upsamples trilinearly
  like Captum's Grad-CAM (:func:`analysis.attribution.methods.gradcam`), so the whole CAM family
  shares one resampling. Upsampled to a 16 x 112 x 112 clip, its Grad-CAM, XGrad-CAM and LayerCAM
  differ from ours by up to 0.24-0.5 on the [0, 1] scale (Pearson r 0.83-0.96), from the
  resampling alone.
- It back-propagates to every parameter (``loss.backward()``, leaving ``.grad`` filled) and copies
  activations and gradients to the host; ours differentiates the target logits with respect to the
  layer alone (:func:`torch.autograd.grad`), below which nothing is computed.

It stays a test dependency (the ``dev`` extra), not an ``analysis`` one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from analysis.attribution.contexts import cudnn_off_for_rnns


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> nn.Module:
    """``"layer4"`` / ``"layer3.1"`` -> the submodule; a module is returned as is."""
    if isinstance(layer, nn.Module):
        return layer
    try:
        return model.get_submodule(layer)
    except AttributeError as err:
        stages = [name for name, _ in model.named_children()]
        raise ValueError(f"layer {layer!r} is not a submodule of the model (top level: {stages})") from err


def layer_activations_and_gradients(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                                    layer: str | nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output ``A`` and the gradient of each clip's target logit with respect to it.

    Args:
        model: the classifier, already in eval mode (``model(x)`` gives logits ``(B, C)``).
        x: ``(B, 3, T, H, W)`` clips.
        target: ``(B,)`` class of each clip.
        layer: a submodule name or module whose output is ``(B, K, T', H', W')``.

    Returns:
        ``(A, g)``, both ``(B, K, T', H', W')``, detached, float32 (float64 for a float64 model:
        half precision from autocast is widened, nothing is narrowed). Clips do not mix in eval
        mode, so one backward pass of the summed target logits gives every clip's own gradient.
    """
    module = resolve_layer(model, layer)
    if not x.requires_grad:  # a layer with no parameters below it needs the input in the graph
        x = x.detach().requires_grad_(True)
    outputs: list[torch.Tensor] = []

    def keep(_module, _args, output):
        outputs.append(output)

    handle = module.register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        handle.remove()
    if len(outputs) != 1:
        raise ValueError(f"layer {layer!r} ran {len(outputs)} times in one forward pass; choose a layer that runs once")
    acts = outputs[0]
    if not isinstance(acts, torch.Tensor) or acts.dim() != 5:
        shape = tuple(acts.shape) if isinstance(acts, torch.Tensor) else type(acts).__name__
        raise ValueError(f"layer {layer!r} gave {shape}; the CAM methods need a (B, K, T', H', W') feature map "
                         "(choose a convolutional stage)")
    score = logits.gather(1, target.view(-1, 1).to(logits.device)).sum()
    (grads,) = torch.autograd.grad(score, acts)
    dtype = torch.promote_types(acts.dtype, torch.float32)
    return acts.detach().to(dtype), grads.detach().to(dtype)


def _safe_divide(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den``, 0 where ``den`` is 0."""
    return torch.where(den != 0, num / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(num))


def _channel_sums(t: torch.Tensor) -> torch.Tensor:
    """``(B, K, T', H', W') -> (B, K, 1, 1, 1)``: the sum over every position."""
    return t.sum(dim=(2, 3, 4), keepdim=True)


def gradcam_plus_plus_map(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ before the ReLU: ``(B, K, T', H', W')`` twice -> ``(B, T', H', W')``."""
    g2 = grads.pow(2)
    alpha = _safe_divide(g2, 2 * g2 + _channel_sums(acts) * g2 * grads)
    weights = _channel_sums(alpha * grads.clamp(min=0))
    return (weights * acts).sum(dim=1)


def xgradcam_map(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """XGrad-CAM before the ReLU: ``(B, K, T', H', W')`` twice -> ``(B, T', H', W')``."""
    weights = _channel_sums(_safe_divide(acts, _channel_sums(acts)) * grads)
    return (weights * acts).sum(dim=1)


def layercam_map(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """LayerCAM before the ReLU: ``(B, K, T', H', W')`` twice -> ``(B, T', H', W')``."""
    return (grads.clamp(min=0) * acts).sum(dim=1)


def _class_activation_map(combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], model: nn.Module,
                          x: torch.Tensor, target: torch.Tensor, layer: str | nn.Module, relu: bool) -> torch.Tensor:
    with cudnn_off_for_rnns(model, x.device):
        acts, grads = layer_activations_and_gradients(model, x, target, layer)
    cam = combine(acts, grads)
    if relu:
        cam = cam.clamp(min=0)
    return F.interpolate(cam[:, None], size=tuple(x.shape[2:]), mode="trilinear", align_corners=False)[:, 0]


def gradcam_plus_plus(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, layer: str | nn.Module = "layer4",
                      relu: bool = True) -> torch.Tensor:
    """Grad-CAM++ on ``layer``, trilinearly upsampled: ``(B, T, H, W)`` (>= 0 with ``relu``)."""
    return _class_activation_map(gradcam_plus_plus_map, model, x, target, layer, relu)


def xgradcam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, layer: str | nn.Module = "layer4",
             relu: bool = True) -> torch.Tensor:
    """XGrad-CAM on ``layer``, trilinearly upsampled: ``(B, T, H, W)`` (>= 0 with ``relu``)."""
    return _class_activation_map(xgradcam_map, model, x, target, layer, relu)


def layercam(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, layer: str | nn.Module = "layer4",
             relu: bool = True) -> torch.Tensor:
    """LayerCAM on ``layer``, trilinearly upsampled: ``(B, T, H, W)`` (>= 0 with ``relu``)."""
    return _class_activation_map(layercam_map, model, x, target, layer, relu)
