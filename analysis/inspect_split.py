"""Run ``model.inspect`` over a whole split in batches and keep what the analyses need.

Memory stays bounded: attention maps are kept at their stage resolution ``(T', H', W')`` (a few
thousand floats per clip) and upsampled to frame size only for the clips being looked at
(``analysis.attention.upsample_attention``); GRU hidden states and per-step logits are small.

Example::

    model, cfg = load_model("runs/demo/run")
    cache = open_cache(cfg.data.cache)
    result = inspect_split(model, cache, cache.rows(cfg.data.fold, "test"), crop=cfg.data.crop)
    result.attention["layer3"].shape   # (N, 1, T', H', W')
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class SplitInspection:
    """Everything ``model.inspect`` says about a split, on the CPU, in row order.

    Attributes:
        video_ids: N clip ids.
        rows: (N,) cache row of each clip (to look up frames or ground-truth masks again).
        labels: (N,) int64 true class.
        logits: (N, C) float32.
        attention: stage name -> (N, 1, T', H', W') float32 in (0, 1); empty without attention.
        hidden_states: (N, T_gru, hidden) float32, or None for a model without a GRU.
        step_logits: (N, T_gru, C) float32, or None for a model without a GRU.
    """

    video_ids: list[str]
    rows: np.ndarray
    labels: np.ndarray
    logits: torch.Tensor
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    hidden_states: torch.Tensor | None = None
    step_logits: torch.Tensor | None = None

    @property
    def predictions(self) -> np.ndarray:
        """(N,) int64 predicted class."""
        return self.logits.argmax(dim=1).numpy()

    def __len__(self) -> int:
        return len(self.video_ids)


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def inspect_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, Sequence[int], Sequence[str], Sequence[int]]],
    *,
    device: str | torch.device = "cpu",
    keep_attention: bool = True,
    amp: bool = False,
    total: int | None = None,
    progress: bool = True,
) -> SplitInspection:
    """Inspect pre-transformed batches ``(x (B, 3, T, H, W), labels, video_ids, rows)``.

    The model is put in eval mode (and left there). ``amp`` uses bf16 autocast on CUDA only;
    results are always returned as float32 CPU tensors.
    """
    device = torch.device(device)
    model.eval()
    ids: list[str] = []
    rows: list[int] = []
    labels: list[int] = []
    logits: list[torch.Tensor] = []
    attention: dict[str, list[torch.Tensor]] = {}
    hidden: list[torch.Tensor] = []
    steps: list[torch.Tensor] = []
    for x, batch_labels, batch_ids, batch_rows in tqdm(
        batches, total=total, desc="inspect", unit="batch", disable=not progress
    ):
        with _autocast(device, amp):
            out = model.inspect(x.to(device, non_blocking=True))
        ids.extend(str(v) for v in batch_ids)
        rows.extend(int(r) for r in batch_rows)
        labels.extend(int(v) for v in batch_labels)
        logits.append(out.logits.float().cpu())
        if keep_attention:
            for name, maps in out.attention.items():
                attention.setdefault(name, []).append(maps.float().cpu())
        if out.hidden_states is not None:
            hidden.append(out.hidden_states.float().cpu())
        if out.step_logits is not None:
            steps.append(out.step_logits.float().cpu())
    if not logits:
        raise ValueError("inspect_batches: no batches (is the split empty?)")
    return SplitInspection(
        video_ids=ids,
        rows=np.asarray(rows, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        logits=torch.cat(logits),
        attention={name: torch.cat(parts) for name, parts in attention.items()},
        hidden_states=torch.cat(hidden) if hidden else None,
        step_logits=torch.cat(steps) if steps else None,
    )


def inspect_split(
    model: nn.Module,
    cache,
    rows: Sequence[int] | np.ndarray,
    *,
    crop: int = 112,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    keep_attention: bool = True,
    amp: bool = False,
    progress: bool = True,
) -> SplitInspection:
    """Run ``model.inspect`` over cache ``rows`` with the evaluation transform (centre crop).

    Args:
        model: a tdrag model (any variant; attention / GRU outputs are kept when it has them).
        cache: a ``tdrag.data.cache.ClipCache`` (``open_cache``).
        rows: cache rows to inspect, e.g. ``cache.rows(fold, "test")``.
        crop: input side, the run's ``data.crop``.
    """
    from tdrag.data.loader import eval_transform, make_loader

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise ValueError("inspect_split: no rows given (is the split empty?)")
    device = torch.device(device)
    loader = make_loader(cache, rows, batch_size=batch_size, shuffle=False, num_workers=num_workers)

    def batches():
        for clips, labels, batch_rows in loader:
            x = eval_transform(clips.to(device, non_blocking=True), crop=crop)
            batch_rows = [int(r) for r in batch_rows]
            ids = [str(cache.index[r]["video_id"]) for r in batch_rows]
            yield x, [int(v) for v in labels], ids, batch_rows

    return inspect_batches(
        model,
        batches(),
        device=device,
        keep_attention=keep_attention,
        amp=amp,
        total=len(loader),
        progress=progress,
    )


def clip_inputs(cache, rows: Sequence[int] | np.ndarray, crop: int = 112, device: str | torch.device = "cpu") -> torch.Tensor:
    """The model input for cache ``rows``, exactly as ``inspect_split`` feeds it.

    Returns:
        (B, 3, T, crop, crop) float32, normalised (centre crop), on ``device``.
    """
    from tdrag.data.loader import eval_transform

    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    clips = torch.from_numpy(np.ascontiguousarray(cache.frames[rows])).to(device)
    return eval_transform(clips, crop=crop)


@dataclass
class RunInspection:
    """A trained run opened for inspection: its model, config, frame cache and one split's pass."""

    model: nn.Module
    config: object
    cache: object
    split: str
    inspection: SplitInspection

    def inputs(self, rows: Sequence[int] | np.ndarray) -> torch.Tensor:
        """(B, 3, T, crop, crop) inputs for cache rows, on the model's device."""
        device = next(self.model.parameters()).device
        return clip_inputs(self.cache, rows, self.config.data.crop, device)


def inspect_run(
    run_dir,
    split: str = "test",
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    cache_path=None,
    keep_attention: bool = True,
    amp: bool = False,
    progress: bool = True,
) -> RunInspection:
    """Load a run's model (best checkpoint, else last) and inspect its fold's ``split``.

    Args:
        run_dir: a run directory (``checkpoints/``) or a checkpoint file.
        split: "test" or "train" of the run's ``data.fold``.
        cache_path: use this frame cache instead of the config's ``data.cache`` (moved disks).
    """
    from tdrag.checkpoints import load_model
    from tdrag.data.cache import open_cache

    model, config = load_model(run_dir, device=device)
    cache = open_cache(cache_path or config.data.cache)
    rows = cache.rows(config.data.fold, split)
    inspection = inspect_split(
        model, cache, rows, crop=config.data.crop, batch_size=batch_size, device=device,
        keep_attention=keep_attention, amp=amp, progress=progress,
    )
    return RunInspection(model=model, config=config, cache=cache, split=split, inspection=inspection)
