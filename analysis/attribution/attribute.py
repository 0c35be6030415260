"""Captum attributions for video classifiers: one entry point, batched passes, and an opened run's
maps made once.

    maps = attribute(model, clips, target, "integrated_gradients", n_steps=64)   # (B, T, H, W)
    frames = attribute(model, clips, target, "frame_ablation")                   # (B, T)
    result = attribute_dataset(model, loader, "gradcam", targets="prediction", layer="layer3")
    maps = attribute_clips(run, [0, 3], "integrated_gradients")   # kept in run.attributions
    result = attribute_run(run, "gradcam")     # a whole run, from its cached pass (no forward)

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
    "attribute_clips",
    "attribute_dataset",
    "attribute_run",
    "check_clips",
    "clip_targets",
    "store_key",
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
    """Attribute every clip of a loader or a clip tensor, batch by batch, with a progress bar.

    Each batch runs the model once for its probabilities (the clips come from outside an opened
    run, so there is no cached pass to read them from; :func:`attribute_run` reads them from a
    run's).

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
    given = _given_targets(loader_or_clips, targets, labels)
    parts = _Parts(method, strict)
    chunks = _batches(loader_or_clips, labels, batch_size, crop, model_device(model))
    for x, lab, rows in tqdm(chunks, total=_batch_count(loader_or_clips, batch_size), desc=method,
                             disable=not progress):
        # Only per-clip problems are caught (in _Parts.add): CUDA out of memory, cuDNN's RNN error or
        # a bad option are problems of the whole pass and propagate.
        with torch.no_grad(), eval_mode(model):
            prob = model(x).float().softmax(dim=1).cpu()
        tgt = _batch_targets(targets, given, parts.seen, lab, prob.argmax(dim=1))
        maps = attribute(model, x, tgt, method, **options).cpu()
        parts.add(maps, rows, lab, prob, tgt.cpu())
    return parts.result(options)


def attribute_run(run, method: str, positions: Sequence[int] | None = None,
                  targets: str | Sequence[int] = "prediction", small: bool = False, strict: bool = False,
                  progress: bool = True, **overrides: Any) -> AttributionResult:
    """:func:`attribute_dataset` over an opened run's clips (all, or those at ``positions``), from its
    cached pass: probabilities and predictions are read from ``run.inspection`` (no forward pass of
    the model), maps made by :func:`attribute_clips` (each kept in ``run.attributions``, so a map
    already made is not made again). ``targets``: "prediction", "label" or one class per clip;
    ``small`` and ``overrides``: the method's options (:mod:`analysis.attribution.defaults`).

    ``rows`` of the result are cache rows (``run.rows``); ``skipped`` lists non-finite maps as
    :func:`attribute_dataset` does (``strict``: raise instead).
    """
    import numpy as np
    from tqdm.auto import tqdm

    from analysis.attribution.defaults import run_method_options

    options = run_method_options(run, method, small=small, **overrides)
    check_options(method, options)
    positions = np.arange(len(run)) if positions is None else _positions(run, positions)
    chosen = clip_targets(run, positions, targets)
    parts = _Parts(method, strict)
    step = max(1, int(run.batch_size))
    for start in tqdm(range(0, len(positions), step), desc=method, disable=not progress):
        pos, tgt = positions[start : start + step], chosen[start : start + step]
        maps = attribute_clips(run, pos, method, tgt, small=small, **overrides)
        parts.add(maps, torch.as_tensor(run.rows[pos]), torch.as_tensor(run.labels[pos]), run.probabilities[pos],
                  torch.as_tensor(tgt))
    return parts.result(options)


def _given_targets(source: torch.Tensor | Iterable, targets: str | torch.Tensor,
                   labels: torch.Tensor | Sequence[int] | None) -> torch.Tensor | None:
    """``targets`` checked: the given classes as a CPU tensor, or None for "label" / "prediction"."""
    if isinstance(targets, str) and targets not in ("label", "prediction"):
        raise ValueError(f"targets must be 'label', 'prediction' or a tensor, got {targets!r}")
    if isinstance(source, torch.Tensor) and isinstance(targets, str) and targets == "label" and labels is None:
        raise ValueError("targets='label' with a plain clip tensor needs labels=")
    return None if isinstance(targets, str) else torch.as_tensor(targets).long().cpu()


def _batch_count(source: torch.Tensor | Iterable, batch_size: int) -> int | None:
    """Chunks :func:`_batches` yields, for the progress bar (None for a loader without a length)."""
    if isinstance(source, torch.Tensor):
        return -(-source.shape[0] // batch_size)
    return len(source) if hasattr(source, "__len__") else None


def _batch_targets(targets: str | torch.Tensor, given: torch.Tensor | None, start: int, labels: torch.Tensor,
                   predictions: torch.Tensor) -> torch.Tensor:
    """The class each clip of a batch (input positions ``start ..``) is attributed to."""
    if given is not None:
        return given[start : start + len(labels)]
    if targets == "prediction":
        return predictions
    if (labels < 0).any():
        raise ValueError("targets='label' but some clips have no label (pass labels= or targets='prediction')")
    return labels


@dataclass
class _Parts:
    """The batches of an :class:`AttributionResult` being gathered; non-finite maps skipped and listed."""

    method: str
    strict: bool
    seen: int = 0
    chunks: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def add(self, maps: torch.Tensor, rows: torch.Tensor, labels: torch.Tensor, probabilities: torch.Tensor,
            targets: torch.Tensor) -> None:
        self.seen += len(labels)
        finite = torch.isfinite(maps.flatten(1)).all(dim=1)
        for i in torch.nonzero(~finite).flatten().tolist():
            err = NonFiniteAttribution(f"non-finite {self.method} values for row {int(rows[i])}")
            if self.strict:
                raise err
            log.warning("%s: skipped row %d: %s", self.method, int(rows[i]), err)
            self.skipped.append({"rows": [int(rows[i])], "reason": f"{type(err).__name__}: {err}"})
        columns = {"maps": maps, "rows": rows.long(), "labels": labels.long(),
                   "predictions": probabilities.argmax(dim=1), "probabilities": probabilities.float(),
                   "targets": targets.long()}
        for name, values in columns.items():
            self.chunks.setdefault(name, []).append(values[finite])

    def result(self, options: dict[str, Any]) -> AttributionResult:
        none = torch.zeros(0, dtype=torch.long)
        empty = {"maps": torch.zeros(0), "probabilities": torch.zeros(0)}

        def cat(name: str) -> torch.Tensor:
            return torch.cat(self.chunks[name]) if self.chunks.get(name) else empty.get(name, none)

        return AttributionResult(method=self.method, options=dict(options), maps=cat("maps"), rows=cat("rows"),
                                 labels=cat("labels"), predictions=cat("predictions"),
                                 probabilities=cat("probabilities"), targets=cat("targets"), skipped=self.skipped)


# --------------------------------------------------------------------------------------------
# An opened run's clips: each map made once


def store_key(method: str, options: dict[str, Any]) -> str | None:
    """The name of ``method``'s maps with ``options`` in ``run.attributions`` ("method {options as
    JSON}"), or None when an option has no exact text form (a tensor baseline): such maps are not kept."""
    import json

    try:
        return f"{method} {json.dumps(options, sort_keys=True)}"
    except TypeError:
        return None


def clip_targets(run, positions, target: str | int | Sequence[int] = "prediction"):
    """``(B,)`` int64 class of each clip at ``positions`` to explain: "prediction" (the class predicted
    in ``run.inspection``), "label" (the true class), one class index, or one per clip."""
    import numpy as np

    if isinstance(target, str):
        if target not in ("prediction", "label"):
            raise ValueError(f"target must be 'prediction', 'label' or class indices, got {target!r}")
        return np.asarray((run.predictions if target == "prediction" else run.labels)[positions], dtype=np.int64)
    chosen = np.asarray(target, dtype=np.int64).reshape(-1)
    if chosen.size == 1:
        return np.full(len(positions), int(chosen[0]), dtype=np.int64)
    if chosen.size != len(positions):
        raise ValueError(f"target: expected one class or {len(positions)} classes, got {chosen.size}")
    return chosen


def attribute_clips(run, positions: Sequence[int], method: str, target: str | int | Sequence[int] = "prediction",
                    small: bool = False, **overrides: Any) -> torch.Tensor:
    """Attribution maps of an opened run's clips with the library's per-method defaults, each made
    once: a clip's map of a method, options and target class is kept in ``run.attributions``
    (a :class:`~analysis.internals.map_store.MapStore`, saved and loaded with the run by
    ``analysis.internals.saved_run``) and returned again when asked for again.

    Args:
        run: an ``analysis.internals.run.Run``.
        positions: clip positions in ``run``.
        method: one of :data:`METHOD_NAMES`.
        target: "prediction" (the class predicted in ``run.inspection``), "label" (the true class),
            a class index or one index per clip.
        small: the coarse settings (:func:`analysis.attribution.defaults.method_options`).
        **overrides: replace any default option.

    Returns:
        CPU float32 ``(B, T, crop, crop)`` (``(B, T)`` for frame ablation). The clips not made yet
        are attributed ``run.batch_size`` at a time.
    """
    import numpy as np

    from analysis.attribution.defaults import run_method_options
    from analysis.internals.map_store import MapStore

    positions = _positions(run, positions)
    targets = clip_targets(run, positions, target)
    options = run_method_options(run, method, small=small, **overrides)
    key = store_key(method, options)
    if key is None or positions.size == 0:
        return _attribute_positions(run, positions, targets, method, options)
    store = run.attributions.setdefault(key, MapStore())
    missing = store.missing(zip(positions.tolist(), targets.tolist()))
    if missing:
        pos, tgt = (np.asarray(v, dtype=np.int64) for v in zip(*missing))
        for p, t, m in zip(pos, tgt, _attribute_positions(run, pos, tgt, method, options)):
            store.put(p, t, m)
    return torch.stack([store.get(p, t) for p, t in zip(positions.tolist(), targets.tolist())])


def _positions(run, positions):
    from analysis.internals.run import as_positions

    return as_positions(positions, len(run))


def _attribute_positions(run, positions, targets, method: str, options: dict[str, Any]) -> torch.Tensor:
    """The maps of the clips at ``positions`` for ``targets`` (one class each), made now, ``run.batch_size``
    clips at a time (a whole split at once would hold all its inputs and their copies): CPU float32."""
    if len(positions) == 0:
        spatial = () if method in FRAME_METHODS else (run.crop, run.crop)
        return torch.zeros((0, run.cache.num_frames, *spatial))
    step = max(1, int(run.batch_size))
    return torch.cat([attribute(run.model, run.inputs(positions[i : i + step]),
                                torch.as_tensor(targets[i : i + step]), method, **options).cpu()
                      for i in range(0, len(positions), step)])
