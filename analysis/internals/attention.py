"""Where TDRAG looks: its spatial attention maps over the keyframes.

Each attention stage gives a map ``M`` in (0, 1) of shape ``(B, 1, T', H', W')`` at that stage's
resolution (``model.inspect``). Here they are upsampled to the input's ``(T, H, W)`` (with
``tdrag.models.inspection.upsample_attention``, the one upsampling ``tdrag predict`` uses too), drawn over
the keyframes, averaged per class, and scored against the synthetic ground-truth masks: the share
of a map's mass that falls inside the region carrying the class signal, next to the share a
uniform map would get (the mask's area), which is the chance level, and the AUROC of the map as a
detector of the signal pixels (0.5 = chance), over the whole crop and within the face; beside
them, the same scores of a centre prior that knows no model (``ground_truth.centre_prior``).

Example::

    maps = run.attention_maps([0])                    # {"layer2": (1, T, H, W), ...} from run.inspection
    fig = plot_keyframe_strip(run.frames([0])[0], {k: v[0] for k, v in maps.items()})
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from analysis.internals.agreement import cache_truth, score_chunks
from analysis.plotting import new_figure
from tdrag.models.inspection import upsample_attention


@torch.no_grad()
def attention_maps(
    model: nn.Module, x: torch.Tensor, stages: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Attention of a batch, upsampled to frame size: one ``model.inspect`` pass of ``x``. For an
    opened run's clips use ``run.attention_maps(positions)``: its cached pass, no second one.

    Args:
        model: a tdrag model with attention stages (eval mode is set by the caller).
        x: (B, 3, T, H, W) normalised input.
        stages: stage names to keep ("layer2", ...); all by default.
    Returns:
        stage name -> (B, T, H, W) in [0, 1], on x's device.
    """
    out = model.inspect(x)
    if not out.attention:
        raise ValueError(f"{type(model).__name__} has no attention stages (model variant without attention?)")
    names = list(out.attention) if stages is None else list(stages)
    missing = [n for n in names if n not in out.attention]
    if missing:
        raise KeyError(f"no attention for stage(s) {missing}; the model has {list(out.attention)}")
    size = x.shape[2:]
    return {name: upsample_attention(out.attention[name], size) for name in names}


def mean_attention_per_class(
    maps: torch.Tensor, labels: Sequence[int] | np.ndarray, num_classes: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Average attention map per true class.

    Args:
        maps: (N, T, H, W) or (N, 1, T', H', W') maps (stage resolution works and saves memory).
        labels: (N,) class indices.
        num_classes: C, the run's number of classes.
    Returns:
        means (C, ...) with NaN for classes without clips, and counts (C,) int64.
    """
    if maps.dim() == 5:
        maps = maps[:, 0]
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    if labels_t.shape[0] != maps.shape[0]:
        raise ValueError(f"{maps.shape[0]} maps but {labels_t.shape[0]} labels")
    if labels_t.numel() and (labels_t.min() < 0 or labels_t.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(labels_t.min())}..{int(labels_t.max())}")
    counts = torch.bincount(labels_t, minlength=num_classes)[:num_classes]
    sums = torch.zeros((num_classes, *maps.shape[1:]), dtype=torch.float64)
    sums.index_add_(0, labels_t, maps.double().cpu())
    shape = (num_classes,) + (1,) * (maps.dim() - 1)
    means = sums / counts.view(shape).double()  # 0/0 = NaN for absent classes
    return means.float(), counts.numpy().astype(np.int64)


def mass_in_mask_table(
    shares: np.ndarray | torch.Tensor,
    labels: Sequence[int] | np.ndarray,
    mask_fractions: np.ndarray | torch.Tensor | None = None,
    *,
    class_names: Sequence[str],
    aurocs: np.ndarray | torch.Tensor | None = None,
    aurocs_face: np.ndarray | torch.Tensor | None = None,
) -> pd.DataFrame:
    """Per-class summary of attention's agreement with the ground truth.

    Args:
        shares: (N,) share of attention mass inside the mask per clip.
        labels: (N,) true class per clip.
        mask_fractions: (N,) mask area fraction per clip (the share a uniform map would get).
        class_names: the C class names in label order (the run's).
        aurocs: (N,) AUROC of each clip's maps as a detector of the mask's pixels
            (``analysis.internals.ground_truth.auroc_in_mask``; NaN for a clip with no frame to score).
        aurocs_face: (N,) the same AUROC among the face's pixels only (``within=face``).
    Returns:
        DataFrame indexed by class (plus "all") with columns clips, mass_in_mask (mean),
        mass_in_mask_std, when given mask_area (mean) and ratio = mass_in_mask / mask_area
        (> 1 means attention concentrates on the ground truth), auroc (mean over the clips
        with a score; 0.5 is chance, 1 every signal pixel above every other) and auroc_face.
    """
    shares = np.asarray(shares, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    frame = pd.DataFrame({"label": labels, "mass_in_mask": shares})
    if mask_fractions is not None:
        frame["mask_area"] = np.asarray(mask_fractions, dtype=np.float64)
    if aurocs is not None:
        frame["auroc"] = np.asarray(aurocs, dtype=np.float64)
    if aurocs_face is not None:
        frame["auroc_face"] = np.asarray(aurocs_face, dtype=np.float64)
    records = []
    groups = [(name, frame[frame.label == c]) for c, name in enumerate(class_names)]
    groups.append(("all", frame))
    for name, part in groups:
        if len(part) == 0:
            continue
        rec = {
            "class": name,
            "clips": len(part),
            "mass_in_mask": part.mass_in_mask.mean(),
            "mass_in_mask_std": part.mass_in_mask.std(ddof=0),
        }
        if mask_fractions is not None:
            rec["mask_area"] = part.mask_area.mean()
            rec["ratio"] = rec["mass_in_mask"] / rec["mask_area"] if rec["mask_area"] > 0 else np.nan
        if aurocs is not None:
            rec["auroc"] = part.auroc.mean()  # pandas skips NaN: clips without a frame to score
        if aurocs_face is not None:
            rec["auroc_face"] = part.auroc_face.mean()
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("class")


def attention_in_ground_truth(
    inspection,
    cache,
    synthetic_root,
    crop: int,
    stages: Sequence[str] | None = None,
    chunk: int = 16,
) -> pd.DataFrame:
    """Agreement of each attention stage with the synthetic ground-truth masks, per class: the share
    of its mass inside them (against the masks' area, chance) and its AUROC as a detector of their
    pixels (0.5 = chance; a sigmoid's floor does not dilute it), over the whole crop and within the
    face (``auroc_face``: the signal parts against the rest of the face; NaN for a set rendered
    without region maps). A last "stage", :data:`~analysis.internals.ground_truth.CENTRE_PRIOR`,
    scores a fixed Gaussian over the centre of the crop the same way: on centred face crops it
    already scores well against the background, so the stages' figures are read against it.

    Args:
        inspection: ``analysis.internals.run.SplitInspection`` (``run.inspection``) of a split of a synthetic cache.
        cache: the ``ClipCache`` it was computed on (its class names label the rows).
        synthetic_root: the synthetic data set's root (holds ``synthetic/masks`` and ``synthetic/regions``).
        crop: the evaluation crop used (``data.crop``), to align masks with the input.
        stages: stages to score; all by default.
        chunk: clips upsampled at once (bounds memory).
    Returns:
        DataFrame with a (stage, class) MultiIndex and the columns of ``mass_in_mask_table``.
    """
    if not inspection.attention:
        raise ValueError("the inspection holds no attention maps (model without attention, or keep_attention=False)")
    names = list(inspection.attention) if stages is None else list(stages)
    rows = np.asarray(inspection.rows)
    size = (int(cache.frames.shape[1]), crop, crop)

    def maps_of(part: np.ndarray) -> dict[str, torch.Tensor]:
        return {name: upsample_attention(inspection.attention[name][torch.as_tensor(part)], size) for name in names}

    agreement = score_chunks(np.arange(len(rows)), maps_of,
                             lambda part: cache_truth(cache, rows[part], synthetic_root, crop), chunk=chunk)
    fractions = agreement.mask_area.numpy()
    tables = {}
    for name, score in agreement.scores.items():  # the stages, then the centre prior
        figures = {key: values.numpy() for key, values in score.items()}
        tables[name] = mass_in_mask_table(figures["mass_in_mask"], inspection.labels, fractions,
                                          class_names=cache.class_names, aurocs=figures["auroc"],
                                          aurocs_face=figures["auroc_face"])
    return pd.concat(tables, names=["stage", "class"])


def select_keyframes_to_show(num_frames: int, count: int = 8) -> list[int]:
    """``count`` evenly spread frame indices out of ``num_frames`` (all when fewer)."""
    if num_frames <= count:
        return list(range(num_frames))
    return [int(round(i)) for i in np.linspace(0, num_frames - 1, count)]


def display_images(clip: torch.Tensor | np.ndarray) -> np.ndarray:
    """A clip as ``(T, H, W, 3)`` float in [0, 1] for imshow.

    ``clip``: uint8 display frames ``(T, H, W, 3)`` straight from the cache (``run.frames(...)``,
    shown as they are), or a normalised model input ``(3, T, H, W)`` (de-normalised here).
    """
    if isinstance(clip, np.ndarray):
        clip = torch.from_numpy(np.ascontiguousarray(clip))
    clip = clip.detach().cpu()
    if clip.dtype == torch.uint8:
        if clip.dim() != 4 or clip.shape[-1] != 3:
            raise ValueError(f"uint8 display frames must be (T, H, W, 3), got {tuple(clip.shape)}")
        return clip.float().div(255.0).numpy()
    from tdrag.data.augment import denormalize

    if clip.dim() != 4 or clip.shape[0] != 3:
        raise ValueError(f"a normalised clip must be (3, T, H, W), got {tuple(clip.shape)}")
    return denormalize(clip.float()).permute(1, 2, 3, 0).numpy()


def _frame_size_map(m: torch.Tensor, size: tuple[int, int, int]) -> np.ndarray:
    """One clip's map, (T, H, W) or stage-resolution (1, T', H', W'), as a (T, H, W) array."""
    m = m.detach().cpu().float()
    if tuple(m.shape) != tuple(size):
        m = upsample_attention(m.reshape(1, 1, *m.shape[-3:]), size)[0]
    return m.numpy()


def _mosaic(tiles: list[np.ndarray], gap: int) -> np.ndarray:
    """``(H, W, 3)`` tiles side by side with ``gap`` white columns between them: ``(H, n W + (n-1) gap, 3)``."""
    white = np.ones((tiles[0].shape[0], gap, 3), dtype=np.float32)
    parts: list[np.ndarray] = []
    for k, tile in enumerate(tiles):
        parts += ([white] if k else []) + [tile.astype(np.float32, copy=False)]
    return np.concatenate(parts, axis=1)


def _overlay(image: np.ndarray, m: np.ndarray, cmap, alpha: float) -> np.ndarray:
    """``m`` (H, W) in [0, 1] coloured by ``cmap`` over ``image`` (H, W, 3) with opacity ``alpha``
    (what imshow draws for an alpha image over another)."""
    return (1.0 - alpha) * image + alpha * cmap(np.clip(m, 0.0, 1.0))[..., :3]


def plot_keyframe_strip(
    clip: torch.Tensor | np.ndarray,
    maps: dict[str, torch.Tensor],
    frames: Sequence[int] | None = None,
    title: str | None = None,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> Figure:
    """Keyframes (top row) and each stage's attention over them (one row per stage).

    Args:
        clip: (T, H, W, 3) uint8 display frames (``run.frames([i])[0]``) or a (3, T, H, W)
            normalised input clip (as fed to the model).
        maps: stage name -> (T, H, W) attention at frame size (``attention_maps(...)[name][i]``);
            stage-resolution maps (1, T', H', W') are upsampled here.
        frames: which keyframes to show (default: up to 8 evenly spread).

    Each row is one image, the keyframes side by side (``fig.axes[r]``, its y label the row's name),
    and a colour bar beside them; the geometry is set by hand. One axes per keyframe under a
    constrained layout took about 1 s per strip, and the dossier draws 21 of them.
    """
    images = display_images(clip)
    frames = select_keyframes_to_show(images.shape[0]) if frames is None else list(frames)
    maps = {name: _frame_size_map(m, images.shape[:3]) for name, m in maps.items()}
    colours = matplotlib.colormaps[cmap]
    gap = max(1, images.shape[2] // 16)
    rows = [("input", _mosaic([images[t] for t in frames], gap))]
    rows += [(name, _mosaic([_overlay(images[t], m[t], colours, alpha) for t in frames], gap))
             for name, m in maps.items()]
    top, left, right, bottom = 0.3 + (0.35 if title else 0.0), 0.55, 0.85, 0.05
    width, height = 1.3 * len(frames) + left + right - 0.3, 1.4 * len(rows) + top + bottom - 0.2
    fig = new_figure(width, height, layout=None)
    axes = fig.subplots(len(rows), 1, squeeze=False, gridspec_kw={
        "left": left / width, "right": 1 - right / width, "bottom": bottom / height, "top": 1 - top / height,
        "hspace": 0.12})[:, 0]
    for ax, (name, mosaic) in zip(axes, rows):
        ax.imshow(mosaic)
        ax.set_yticks([])
        ax.set_xticks([])
        ax.set_ylabel(name, fontsize=9)
        for side in ax.spines.values():
            side.set_visible(False)
    step = images.shape[2] + gap
    axes[0].xaxis.tick_top()
    axes[0].set_xticks([k * step + (images.shape[2] - 1) / 2 for k in range(len(frames))],
                       [f"frame {t}" for t in frames], fontsize=8)
    axes[0].tick_params(axis="x", length=0)
    if maps:
        span = 1 - (top + bottom) / height
        bar = fig.add_axes([1 - right / width + 0.12 / width, bottom / height + 0.1 * span, 0.12 / width, 0.8 * span],
                           label="<colorbar>")
        scale = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0.0, 1.0), colours)
        fig.colorbar(scale, cax=bar, label="attention", alpha=alpha)
    if title:
        fig.suptitle(title, y=1.0 - 0.08 / height)
    return fig


def plot_class_mean_attention(
    means: torch.Tensor,
    counts: Sequence[int] | np.ndarray | None = None,
    *,
    class_names: Sequence[str],
    title: str | None = None,
    cmap: str = "viridis",
) -> Figure:
    """One panel per class: its mean attention map, averaged over time.

    Args:
        means: (C, T, H, W) or (C, H, W) from ``mean_attention_per_class``; NaN classes are shown
            as empty panels.
        counts: (C,) clips per class, shown in the panel titles.
        class_names: the C class names in label order (the run's).
    """
    means = means.detach().cpu().float()
    if means.dim() == 5:
        means = means[:, 0]
    if means.dim() == 4:
        means = means.mean(dim=1)
    num = means.shape[0]
    finite = means[torch.isfinite(means)]
    vmax = float(finite.max()) if finite.numel() else 1.0
    vmin = float(finite.min()) if finite.numel() else 0.0
    cols = min(num, 4)
    rows = (num + cols - 1) // cols
    fig = new_figure(2.4 * cols + 0.8, 2.4 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for c, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if c >= num:
            ax.set_axis_off()
            continue
        name = class_names[c] if c < len(class_names) else str(c)
        label = f"{name} (n={int(counts[c])})" if counts is not None else name
        ax.set_title(label, fontsize=9)
        if torch.isfinite(means[c]).all():
            image = ax.imshow(means[c].numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="mean attention")
    fig.suptitle(title or "Mean attention per class (averaged over time)")
    return fig
