"""Integrated Gradients taken beyond a model's linear input layer: the same maps, about a third less work.

A model whose clip reaches the network only through an affine first layer ``L`` (tdrag's models
name it in ``input_layer``: the stem convolution) is ``f(x) = g(L(x))``. Along IG's straight path
``x(a) = x0 + a (x - x0)`` the layer's output moves on a straight path too,
``L(x(a)) = z0 + a (z - z0)``, and ``df/dx(x(a)) = J^T dg/dz(z(a))`` with ``J`` the layer's constant
Jacobian. The quadrature's weighted sum of gradients therefore commutes with ``J^T``::

    IG(x) = (x - x0) * J^T sum_k w_k dg/dz(z0 + a_k (z - z0))

so ``L`` runs forward twice per clip (clip and baseline) and backward once per clip, instead of
forward and backward once per step and clip. For the stem convolution (3 input channels, 7x7
kernels, stride 2) that backward pass is the costliest of the network (on one CPU thread about a
sixth of a whole forward and backward pass). The eval-mode BatchNorm after each convolution is
folded into it as well (``torch.nn.utils.fusion.fuse_conv_bn_eval``: the same function, two fewer
passes over each activation). Both are exact up to float rounding; the maps equal Captum's
``IntegratedGradients`` on the whole model (``tests/analysis/test_linear_input.py``).

Everything runs on a copy of the model (its hooks copied with it): the caller's modules and
parameters are untouched. A model without ``input_layer`` gets Captum's ``IntegratedGradients``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from analysis.attribution.contexts import cudnn_off_for_rnns


def input_layer(model: nn.Module) -> str | None:
    """The name of the affine layer through which alone ``model`` reads its input (its class's
    ``input_layer`` attribute), or None when the model does not declare one."""
    name = getattr(type(model), "input_layer", None)
    return name if isinstance(name, str) else None


class _Given(nn.Module):
    """Stands in for the input layer: returns the layer output it was given, whatever its input."""

    def __init__(self) -> None:
        super().__init__()
        self.output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A copy: the given tensor is the leaf gradients are taken for, and in-place ReLUs follow.
        return self.output.clone()


def fold_batchnorms(model: nn.Module) -> nn.Module:
    """Fold each eval-mode ``BatchNorm3d`` that directly follows a ``Conv3d`` in an ``nn.Sequential``
    into that convolution (the BatchNorm becomes ``nn.Identity``), in place; returns ``model``."""
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if (isinstance(conv, nn.Conv3d) and isinstance(norm, nn.BatchNorm3d) and not conv.training
                    and not norm.training and norm.track_running_stats and norm.running_mean is not None):
                module[i] = fuse_conv_bn_eval(conv, norm)
                module[i + 1] = nn.Identity()
    return model


def _quadrature(n_steps: int, integration: str) -> tuple[list[float], list[float]]:
    """Captum's points ``a_k`` and weights ``w_k`` of the path integral (its own rule, so the maps
    agree with its ``IntegratedGradients``)."""
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters(integration)
    return list(alphas(n_steps)), list(step_sizes(n_steps))


def integrated_gradients_past_input(model: nn.Module, layer: str, x: torch.Tensor, target: torch.Tensor,
                                    baseline: float | torch.Tensor, n_steps: int, per_pass: int,
                                    integration: str) -> torch.Tensor:
    """Integrated Gradients of ``model``'s target logit, per input value: ``(B, 3, T, H, W)``.

    Args:
        model: in eval mode, reading ``x`` only through its affine submodule ``layer``.
        x: ``(B, 3, T, H, W)`` clips; target: ``(B,)`` class indices.
        baseline: a float or a tensor broadcastable to ``x`` (normalised space).
        n_steps, integration: the path integral's points and rule (Captum's ``method`` names).
        per_pass: (step, clip) pairs per forward and backward pass, taken step by step as Captum does.
    """
    work = fold_batchnorms(copy.deepcopy(model))
    for p in work.parameters():
        p.requires_grad_(False)
    linear = work.get_submodule(layer)
    x0 = torch.zeros_like(x) + baseline
    with torch.no_grad():
        z, z0 = linear(x), linear(x0)
    given = _Given()
    _set_submodule(work, layer, given)
    alphas, weights = _quadrature(n_steps, integration)
    batch = x.shape[0]
    clips = torch.arange(batch, device=x.device).repeat(n_steps)  # step-major: all clips of step 0 first
    steps = torch.arange(n_steps, device=x.device).repeat_interleave(batch)
    alpha = torch.tensor(alphas, dtype=z.dtype, device=x.device)[steps]
    weight = torch.tensor(weights, dtype=z.dtype, device=x.device)[steps]
    shape = (-1,) + (1,) * (z.dim() - 1)
    summed = torch.zeros_like(z)  # sum_k w_k dg/dz at each clip's path points
    with cudnn_off_for_rnns(work, x.device), torch.enable_grad():
        for start in range(0, len(clips), per_pass):
            rows, part = clips[start:start + per_pass], slice(start, start + per_pass)
            given.output = (z0[rows] + alpha[part].view(shape) * (z[rows] - z0[rows])).requires_grad_(True)
            # The model's input is never read (the layer is replaced): a zero-stride tensor of its shape.
            logits = work(x.new_zeros(()).expand(len(rows), *x.shape[1:]))
            (grad,) = torch.autograd.grad(logits.gather(1, target[rows, None]).sum(), given.output)
            summed.index_add_(0, rows, grad * weight[part].view(shape))
        given.output = None
        leaf = x.detach().requires_grad_(True)
        (grad_x,) = torch.autograd.grad(linear(leaf), leaf, grad_outputs=summed)
    return (x.detach() - x0) * grad_x


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace ``model``'s submodule ``name`` (dotted, as ``named_modules`` gives it) by ``module``."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)
