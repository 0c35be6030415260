"""Where and how a model runs: the device, bf16 autocast, memory format and eval mode.

Written once here and used by training, evaluation, prediction and the analysis package, so
that every path picks the device, the precision and the layout the same way.

    device = resolve_device("auto")                   # CUDA when present, else CPU
    model = place_model(model, device, channels_last=True)
    with eval_mode(model), autocast(device, True):    # bf16 on CUDA only; modes restored after
        logits = model(to_memory_format(x, channels_last=True))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from tdrag.config import DEVICE_PATTERN
from tdrag.errors import TdragError



class DeviceError(TdragError, ValueError):
    """A device string that names no device this machine has."""


def resolve_device(spec: str | torch.device, local_rank: int | None = None, key: str = "train.device") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` as given.

    Args:
        spec: the device string (or a ``torch.device``).
        local_rank: under DDP on CUDA, this process's GPU (replaces the index).
        key: the config key or option named in the error (``train.device``, ``--device``).

    Raises:
        DeviceError: an unknown device string, or CUDA/MPS asked for where there is none.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip()
    if not DEVICE_PATTERN.match(text):
        raise DeviceError(f"{key}: {spec!r} is not a device (use auto, cpu, cuda, cuda:N or mps)")
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{key}: {spec!r} asked for, but CUDA is not available here (use cpu or auto)")
        if local_rank is not None:
            device = torch.device("cuda", local_rank)
        elif device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"{key}: {spec!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceError(f"{key}: {spec!r} asked for, but MPS is not available here")
    return device


def autocast(device: torch.device | str, enabled: bool = True):
    """bf16 autocast on CUDA when ``enabled``; a no-op elsewhere (bf16 convolutions are slow on CPUs)."""
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x: (B, C, T, H, W)`` in ``channels_last_3d`` order when asked, in the plain order otherwise.

    The batch transforms emit ``channels_last_3d`` (the cache's own order, cheapest to produce);
    ``channels_last=False`` therefore costs one copy, and gives the plain layout it promises.
    """
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x if x.is_contiguous(memory_format=fmt) else x.contiguous(memory_format=fmt)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the body with ``model.eval()``; give every submodule back its own ``training`` flag after.

    A model may mix modes on purpose (frozen BatchNorm while fine-tuning), so the flags are
    restored one by one, not with a single ``model.train(was_training)``.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def place_model(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """``model`` on ``device``, in the ``channels_last_3d`` layout on CUDA when asked (the layout
    the batch transforms produce; on the CPU the plain layout is kept)."""
    model = model.to(device)
    if channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
