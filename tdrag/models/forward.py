"""The one loop that runs a model over clips: evaluation transform, eval mode, autocast, once.

Evaluation (``tdrag.train.engine.evaluate``), the analysis pass (``analysis.internals.run``) and
video prediction (``tdrag.predict.inference``) all go through :func:`forward_clips`, so they feed
the model the same input the same way::

    seen, (labels, rows) = forward_clips(model, loader, crop=112, device="cuda", amp=True)
    seen.logits.shape                      # (N, C) float32 on the CPU, every batch concatenated
    seen = forward_clips(model, [(clips,)], crop=112, inspect=True)[0]   # attention, GRU states too

Batches hold clips as the frame cache stores them, ``(B, T, S, S, 3)`` uint8 RGB; the loop moves
them to the device, centre-crops and normalises them (``tdrag.data.augment.eval_transform``),
lays them out (``tdrag.runtime.to_memory_format``) and runs ``model(x)`` (logits only) or
``model.inspect(x)`` in eval mode (every submodule's own mode is given back after) under bf16
autocast on CUDA when ``amp``. Outputs come back detached, float32, on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tdrag.data.augment import eval_transform
from tdrag.models.inspection import ModelInspection
from tdrag.runtime import autocast, eval_mode, model_device, to_memory_format


@torch.no_grad()
def forward_clips(
    model: nn.Module,
    batches: Iterable[Sequence],
    *,
    crop: int,
    device: str | torch.device | None = None,
    amp: bool = False,
    channels_last: bool = False,
    inspect: bool = False,
    keep_attention: bool = True,
    progress: bool = False,
    desc: str = "forward",
    total: int | None = None,
) -> tuple[ModelInspection, list[np.ndarray]]:
    """Run ``model`` over every batch; return its outputs and the batches' other items, concatenated.

    Args:
        model: a tdrag model (``inspect=True`` needs its ``inspect`` method).
        batches: yields ``(clips, *extras)``: clips ``(B, T, S, S, 3)`` uint8 (tensor or array);
            extras (labels, rows, ...: a cache DataLoader yields ``(clips, labels, rows)``) are
            passed through untouched.
        crop: side of the centre crop fed to the model.
        device: where the model runs (default: where its parameters are).
        amp, channels_last: bf16 autocast (CUDA only) / channels_last_3d layout.
        inspect: ``model.inspect`` (attention maps, GRU states, step logits) instead of ``model``.
        keep_attention: with ``inspect``, keep the attention maps (they are the large part).
        progress, desc, total: a progress bar over the batches.

    Returns:
        ``(seen, extras)``: ``seen`` a ModelInspection of all N clips (only ``logits`` unless
        ``inspect``); ``extras`` one ``(N, ...)`` numpy array per extra item of the batches.

    Raises:
        ValueError: no batches (an empty split).
    """
    device = torch.device(device) if device is not None else model_device(model)
    outputs: list[ModelInspection] = []
    extras: list[list[np.ndarray]] = []
    with eval_mode(model):
        for clips, *rest in tqdm(batches, desc=desc, total=total, leave=False, disable=not progress):
            x = eval_transform(torch.as_tensor(clips).to(device, non_blocking=True), crop=crop)
            x = to_memory_format(x, channels_last)
            with autocast(device, amp):
                seen = model.inspect(x) if inspect else ModelInspection(logits=model(x))
            if not keep_attention:
                seen.attention = {}
            outputs.append(seen.cpu())
            extras.append([np.asarray(item) for item in rest])
    if not outputs:
        raise ValueError("forward_clips: no batches (is the split empty?)")
    return ModelInspection.cat(outputs), [np.concatenate(items) for items in zip(*extras)]
