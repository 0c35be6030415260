"""Captum attributions for video classifiers: one entry point and a batched pass over a split.

    maps = attribute(model, clips, target, "integrated_gradients", n_steps=64)   # (B, T, H, W)
    frames = attribute(model, clips, target, "frame_ablation")                   # (B, T)
    result = attribute_dataset(model, loader, "gradcam", targets="prediction", layer="layer3")

Methods, their options and what their maps mean: :mod:`analysis.attribution.methods`; the
per-method defaults the notebooks and the dossier use: :mod:`analysis.attribution.defaults`.

Every call runs the model in eval mode (each submodule's mode is restored after), GRU included:
cuDNN cannot run an RNN backward pass in eval mode, so on CUDA the gradient-based methods run the
model's RNN modules (and only those) with cuDNN off; see :mod:`analysis.attribution.contexts`.

``attribute_dataset`` skips (and lists) only per-clip problems, i.e. a clip whose map is not
finite. Anything else (CUDA out of memory, "cudnn RNN backward can only be called in training
mode", a bad option) is a problem of the whole pass and propagates.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from analysis.attribution.methods import FRAME_METHODS, METHODS
from tdrag.runtime import eval_mode, model_device

__all__ = [
    "FRAME_METHODS",
    "METHOD_NAMES",
    "AttributionResult",
    "NonFiniteAttribution",
    "attribute",
    "attribute_dataset",
    "check_clips",
    "target_tensor",
]

log = logging.getLogger(__name__)

METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


class NonFiniteAttribution(FloatingPointError):
    """A clip's attribution map holds NaN or infinite values (a per-clip problem: skipped and listed)."""


def check_clips(clips: torch.Tensor) -> None:
    """Raise ValueError unless ``clips`` is a float ``(B, 3, T, H, W)`` batch."""
    if not isinstance(clips, torch.Tensor) or clips.dim() != 5 or clips.shape[1] != 3:
        shape = tuple(clips.shape) if isinstance(clips, torch.Tensor) else type(clips).__name__
        raise ValueError(f"clips: expected a normalised float (B, 3, T, H, W) tensor, got {shape}")
    if not clips.is_floating_point():
        raise ValueError(
            f"clips: expected normalised float values, got dtype {clips.dtype} "
            "(apply tdrag.data.augment.eval_transform to uint8 frames first)"
        )


def target_tensor(target: int | Sequence[int] | torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    """An int or ``(B,)`` sequence/tensor of class indices -> a long tensor ``(B,)`` on device."""
    if isinstance(target, int):
        return torch.full((batch,), target, dtype=torch.long, device=device)
    t = torch.as_tensor(target, device=device).long().reshape(-1)
    if t.numel() == 1:
        return t.expand(batch).clone()
    if t.numel() != batch:
        raise ValueError(f"target: expected an int or {batch} class indices, got {t.numel()}")
    return t


def check_options(method: str, options: dict[str, Any]) -> None:
    """Raise a TypeError naming the method and any option it does not take."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(METHOD_NAMES)}")
    params = inspect.signature(METHODS[method]).parameters
    allowed = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(
            f"{method} does not take option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(allowed) or 'none'}"
        )


def attribute(
    model: nn.Module,
    clips: torch.Tensor,
    target: int | Sequence[int] | torch.Tensor,
    method: str,
    **options: Any,
) -> torch.Tensor:
    """Attribution maps of the target logit.

    Args:
        model: a classifier returning logits ``(B, C)``; run in eval mode for the call.
        clips: ``(B, 3, T, H, W)`` normalised float (moved to the model's device).
        target: class index (int) or one per clip ``(B,)``.
        method: one of :data:`METHOD_NAMES`.
        **options: the method's options (see :mod:`analysis.attribution.methods`).

    Returns:
        Detached float32 maps on the model's device: ``(B, T, H, W)``, or ``(B, T)`` for
        ``frame_ablation``.
    """
    check_options(method, options)
    check_clips(clips)
    device = model_device(model)
    # A fresh leaf that needs gradients (Captum warns when it has to switch that on itself).
    x = clips.detach().to(device=device, dtype=torch.float32).requires_grad_(True)
    t = target_tensor(target, x.shape[0], device)
    with eval_mode(model):
        maps = METHODS[method](model, x, t, **options)
    return maps.detach().float()


@dataclass
class AttributionResult:
    """Maps and per-clip metadata from :func:`attribute_dataset` (all tensors on the CPU).

    Fields (N clips attributed):
        method, options: what was run.
        maps: ``(N, T, H, W)`` (``(N, T)`` for frame ablation), float32.
        rows: ``(N,)`` cache row of each clip (its position in the input for plain tensors).
        labels: ``(N,)`` true class, -1 where unknown.
        predictions: ``(N,)`` argmax of the logits.
        probabilities: ``(N, C)`` softmax of the logits.
        targets: ``(N,)`` the class each map explains.
        skipped: one dict per clip skipped (``rows``, ``reason``: a non-finite map); absent from maps.
    """

    method: str
    options: dict[str, Any]
    maps: torch.Tensor
    rows: torch.Tensor
    labels: torch.Tensor
    predictions: torch.Tensor
    probabilities: torch.Tensor
    targets: torch.Tensor
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def to_frame(self):
        """Per-clip metadata as a pandas DataFrame (no maps): row, label, prediction, target,
        target probability."""
        import pandas as pd

        return pd.DataFrame(
            {
                "row": self.rows.numpy(),
                "label": self.labels.numpy(),
                "prediction": self.predictions.numpy(),
                "target": self.targets.numpy(),
                "target_probability": self.probabilities.gather(1, self.targets[:, None])[:, 0].numpy(),
            }
        )


def _batches(
    source: torch.Tensor | Iterable,
    labels: torch.Tensor | Sequence[int] | None,
    batch_size: int,
    crop: int,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield ``(clips float (b, 3, T, H, W) on device, labels (b,), rows (b,))`` chunks.

    ``source`` is a float clip tensor ``(N, 3, T, H, W)`` or an iterable of loader batches
    ``(clips, labels[, rows])`` whose clips are uint8 cache frames ``(B, T, S, S, 3)`` (centre
    cropped and normalised here by ``eval_transform``) or already-normalised float clips.
    """
    if isinstance(source, torch.Tensor):
        check_clips(source)
        n = source.shape[0]
        lab = torch.full((n,), -1, dtype=torch.long) if labels is None else torch.as_tensor(labels).long().cpu()
        if lab.numel() != n:
            raise ValueError(f"labels: expected {n} values for {n} clips, got {lab.numel()}")
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield source[start:stop].to(device), lab[start:stop], torch.arange(start, stop)
        return
    seen = 0
    for batch in source:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError("loader batches must be (clips, labels) or (clips, labels, rows)")
        clips, lab = batch[0], torch.as_tensor(batch[1]).long().cpu()
        rows = torch.as_tensor(batch[2]).long().cpu() if len(batch) == 3 else torch.arange(seen, seen + len(lab))
        seen += len(lab)
        if clips.dtype == torch.uint8:
            from tdrag.data.augment import eval_transform

            clips = eval_transform(clips.to(device, non_blocking=True), crop=crop)
        for start in range(0, clips.shape[0], batch_size):
            stop = start + batch_size
            yield clips[start:stop].to(device), lab[start:stop], rows[start:stop]


def attribute_dataset(
    model: nn.Module,
    loader_or_clips: torch.Tensor | Iterable,
    method: str,
    targets: str | torch.Tensor = "label",
    batch_size: int = 8,
    device: torch.device | str | None = None,
    labels: torch.Tensor | Sequence[int] | None = None,
    crop: int = 112,
    strict: bool = False,
    progress: bool = True,
    **options: Any,
) -> AttributionResult:
    """Attribute every clip of a split, batch by batch, with a progress bar.

    Args:
        model: the classifier; moved to ``device`` when one is given.
        loader_or_clips: a DataLoader (e.g. ``tdrag.data.loader.make_loader(cache, rows, ...)``,
            batches ``(uint8 clips, labels, rows)``) or a float tensor ``(N, 3, T, H, W)``.
        method: see :func:`attribute`; ``**options`` go to it.
        targets: ``"label"`` (the true class), ``"prediction"`` (the model's argmax) or a tensor
            ``(N,)`` of classes in input order.
        batch_size: clips per attribution call (the memory knob together with the method's
            own ``internal_batch_size`` / ``perturbations_per_eval``).
        labels: true classes for a plain clip tensor (needed for ``targets="label"``).
        crop: centre-crop size applied to uint8 loader batches.
        strict: raise on a clip with a non-finite map instead of listing it in ``skipped``.

    Maps are kept on the CPU in float32: about ``T*H*W*4`` bytes a clip (800 kB at 16x112x112).
    """
    from tqdm.auto import tqdm

    check_options(method, options)
    if device is not None:
        model = model.to(device)
    dev = model_device(model)
    if isinstance(targets, str) and targets not in ("label", "prediction"):
        raise ValueError(f"targets must be 'label', 'prediction' or a tensor, got {targets!r}")
    if isinstance(loader_or_clips, torch.Tensor) and targets == "label" and labels is None:
        raise ValueError("targets='label' with a plain clip tensor needs labels=")
    given = None if isinstance(targets, str) else torch.as_tensor(targets).long().cpu()

    total = None
    if isinstance(loader_or_clips, torch.Tensor):
        total = -(-loader_or_clips.shape[0] // batch_size)
    elif hasattr(loader_or_clips, "__len__"):
        total = len(loader_or_clips)

    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("maps", "rows", "labels", "pred", "prob", "targets")}
    skipped: list[dict[str, Any]] = []
    position = 0
    chunks = _batches(loader_or_clips, labels, batch_size, crop, dev)
    for x, lab, rows in tqdm(chunks, total=total, desc=f"{method}", disable=not progress):
        start, position = position, position + len(lab)
        # Only per-clip problems are caught below: CUDA out of memory, cuDNN's RNN error or a bad
        # option are problems of the whole pass and propagate.
        with torch.no_grad(), eval_mode(model):
            prob = model(x).float().softmax(dim=1).cpu()
        pred = prob.argmax(dim=1)
        if given is not None:
            tgt = given[start : start + len(lab)]
        elif targets == "prediction":
            tgt = pred
        else:
            if (lab < 0).any():
                raise ValueError("targets='label' but some clips have no label (pass labels= or targets='prediction')")
            tgt = lab
        maps = attribute(model, x, tgt, method, **options).cpu()
        finite = torch.isfinite(maps.flatten(1)).all(dim=1)
        for i in torch.nonzero(~finite).flatten().tolist():
            err = NonFiniteAttribution(f"non-finite {method} values for row {int(rows[i])}")
            if strict:
                raise err
            log.warning("%s: skipped row %d: %s", method, int(rows[i]), err)
            skipped.append({"rows": [int(rows[i])], "reason": f"{type(err).__name__}: {err}"})
        keep = finite
        out["maps"].append(maps[keep])
        out["rows"].append(rows[keep])
        out["labels"].append(lab[keep])
        out["pred"].append(pred[keep])
        out["prob"].append(prob[keep])
        out["targets"].append(tgt.cpu()[keep])

    def cat(key: str, empty: torch.Tensor) -> torch.Tensor:
        return torch.cat(out[key]) if out[key] else empty

    none = torch.zeros(0, dtype=torch.long)
    return AttributionResult(
        method=method,
        options=dict(options),
        maps=cat("maps", torch.zeros(0)),
        rows=cat("rows", none),
        labels=cat("labels", none),
        predictions=cat("pred", none),
        probabilities=cat("prob", torch.zeros(0)),
        targets=cat("targets", none),
        skipped=skipped,
    )


def attribute_clips(run, positions: Sequence[int], method: str, target: str | int | Sequence[int] = "prediction",
                    small: bool = False, **overrides: Any) -> torch.Tensor:
    """Attribution maps of an opened run's clips with the library's per-method defaults.

    Args:
        run: an ``analysis.internals.run.Run``.
        positions: clip positions in ``run``.
        method: one of :data:`METHOD_NAMES`.
        target: "prediction" (the class predicted in ``run.inspection``), "label" (the true class),
            a class index or one index per clip.
        small: the coarse settings (:func:`analysis.attribution.defaults.method_options`).
        **overrides: replace any default option.

    Returns:
        CPU float32 ``(B, T, crop, crop)`` (``(B, T)`` for frame ablation).
    """
    import numpy as np

    from analysis.attribution.defaults import run_method_options

    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    if isinstance(target, str):
        if target not in ("prediction", "label"):
            raise ValueError(f"target must be 'prediction', 'label' or class indices, got {target!r}")
        target = (run.predictions if target == "prediction" else run.labels)[positions]
    options = run_method_options(run, method, small=small, **overrides)
    return attribute(run.model, run.inputs(positions), torch.as_tensor(np.asarray(target)), method, **options).cpu()
