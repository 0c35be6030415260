"""Which facial regions a model's evidence sits in, per class: the region profile and its heat table.

One pass over an opened run's clips (:func:`score_maps`) scores every map -- each attention stage
from the cached inspection, and any attribution method -- against the clips' facial-region labels
(:mod:`analysis.internals.regions`: the renderer's on synthetic data, the approximate canonical
template on real face crops) and, on synthetic data, against the ground-truth masks (mass in mask,
pointing game, AUROC over the crop and within the face), beside the same scores of a centre prior
that knows no model (``analysis.internals.ground_truth.centre_prior``). Then:

- :func:`region_profile`: per class and map, the share of the map's positive mass in each region,
  the region's share of the pixels, and their ratio (``enrichment``: 1 = what a map spread evenly
  would give, > 1 = the map favours the region); the ground-truth masks are scored as a map too
  ("ground truth": the regions that carry the class's signal in the renderer);
- :func:`plot_region_profile`: one class's bars, model against truth;
- :func:`plot_region_heat_table`: classes x regions for one map, signal regions outlined;
- :func:`agreement_table`: per map, the agreement with the ground truth, the centre prior last;
- :func:`write_region_table`: the profile of a run directory as CSV (``python -m analysis regions``).

    scores = score_maps(run, range(len(run)), methods=["gradcam"])
    profile = region_profile(scores)            # long table: class, map, region, share, area, enrichment
    plot_region_heat_table(profile, "attention layer2")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from analysis.attribution.attribute import attribute_clips
from analysis.attribution.faithfulness import pointing_game
from analysis.attribution.methods import FRAME_METHODS, TITLES
from analysis.internals.agreement import AgreementTally
from analysis.internals.regions import face_pixels, region_areas, region_masses, run_region_maps
from analysis.plotting import new_figure
from tdrag.data.synthetic import REGIONS
from tdrag.errors import OutputError

#: The map name under which the ground-truth masks are profiled.
GROUND_TRUTH = "ground truth"
#: What each region source means, for captions.
SOURCES = {
    "renderer": "regions drawn by the synthetic renderer",
    "template": "regions of a canonical aligned-face template (approximate: it ignores pose, expression and "
                "the dataset's crop margins)",
}


@dataclass
class MapScores:
    """Per-clip scores of named maps from :func:`score_maps` (CPU tensors, N clips, R regions).

    Attributes:
        positions, labels: ``(N,)`` clip positions in the run and their true classes.
        class_names: the run's class names.
        region_source: "renderer" or "template" (see :data:`SOURCES`).
        region_mass: map name -> ``(N, R)`` positive mass per region (frames summed).
        region_area: ``(N, R)`` pixels per region.
        truth_mass: ``(N, R)`` ground-truth mask pixels per region, or None without ground truth.
        mass_in_mask, pointing_game, auroc, auroc_face: name -> ``(N,)`` agreement with the
            ground truth of each map and of :data:`~analysis.internals.ground_truth.CENTRE_PRIOR`
            (scored as a reference, not a map of the model); ``auroc_face`` ranks the face's pixels
            only (NaN without the renderer's regions); all empty without ground truth.
        mask_area: ``(N,)`` share of the pixels inside the masks (chance for mass in mask), or None.
        class_mean_maps: map name -> ``(C, H, W)`` mean over each class's clips and keyframes (NaN
            for a class without clips).
    """

    positions: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    region_source: str
    region_mass: dict[str, torch.Tensor]
    region_area: torch.Tensor
    truth_mass: torch.Tensor | None = None
    mass_in_mask: dict[str, torch.Tensor] = field(default_factory=dict)
    pointing_game: dict[str, torch.Tensor] = field(default_factory=dict)
    auroc: dict[str, torch.Tensor] = field(default_factory=dict)
    auroc_face: dict[str, torch.Tensor] = field(default_factory=dict)
    mask_area: torch.Tensor | None = None
    class_mean_maps: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def map_names(self) -> list[str]:
        return list(self.region_mass)


def _maps_of(run, positions: np.ndarray, methods: Sequence[str], small: bool) -> dict[str, torch.Tensor]:
    maps = {f"attention {stage}": m for stage, m in run.attention_maps(positions).items()}
    for method in methods:
        if method not in FRAME_METHODS:
            maps[method] = attribute_clips(run, positions, method, small=small)
    return maps


def score_maps(run, positions: Iterable[int], methods: Sequence[str] = (), small: bool = False,
               chunk: int = 8) -> MapScores:
    """Score the attention stages and ``methods``' attributions (of the predicted class) of the clips
    at ``positions`` against their facial regions and, on synthetic data, the ground truth.

    Args:
        run: an opened ``analysis.internals.run.Run``.
        positions: clip positions in the run.
        methods: attribution methods (per-method defaults, :mod:`analysis.attribution.defaults`);
            frame ablation has no map and is left out.
        small: the coarse attribution settings.
        chunk: clips whose maps are held at once (bounds memory).
    """
    positions = np.asarray(list(positions), dtype=np.int64)
    labels = np.asarray(run.labels, dtype=np.int64)[positions]
    num_classes, regions = len(run.class_names), len(REGIONS)
    mass: dict[str, list[torch.Tensor]] = {}
    tally = AgreementTally(extra={"pointing_game": pointing_game})  # the shared agreement loop's body
    sums: dict[str, torch.Tensor] = {}
    areas, truth, source = [], [], "template"
    for start in range(0, len(positions), int(chunk)):
        part = positions[start : start + int(chunk)]
        maps = {name: m.detach().float().cpu() for name, m in _maps_of(run, part, methods, small).items()}
        region_labels, source = run_region_maps(run, part)
        areas.append(region_areas(region_labels, regions))
        masks = run.masks(part) if run.synthetic else None
        for name, m in maps.items():
            mass.setdefault(name, []).append(region_masses(m, region_labels, regions))
            total = sums.setdefault(name, torch.zeros(num_classes, *m.shape[-2:], dtype=torch.float64))
            total.index_add_(0, torch.as_tensor(labels[start : start + len(part)]), m.double().mean(dim=1))
        if masks is not None:
            truth.append(region_masses(masks.float(), region_labels, regions))
            tally.add(maps, masks, face_pixels(region_labels) if source == "renderer" else None)
    counts = torch.bincount(torch.as_tensor(labels), minlength=num_classes).double().view(-1, 1, 1)
    cat = lambda parts: torch.cat(parts) if parts else None  # noqa: E731
    agreement = tally.result()  # the maps, then the centre prior
    return MapScores(
        positions=positions, labels=labels, class_names=tuple(run.class_names), region_source=source,
        region_mass={k: torch.cat(v) for k, v in mass.items()},
        region_area=cat(areas) if areas else torch.zeros(0, regions, dtype=torch.float64),
        truth_mass=cat(truth), mask_area=agreement.mask_area if len(agreement) else None,
        mass_in_mask=agreement.by_score("mass_in_mask"), pointing_game=agreement.by_score("pointing_game"),
        auroc=agreement.by_score("auroc"), auroc_face=agreement.by_score("auroc_face"),
        class_mean_maps={k: (v / counts).float() for k, v in sums.items()},  # 0/0 = NaN for absent classes
    )


def _shares(values: torch.Tensor) -> np.ndarray:
    """``(N, R)`` masses -> each clip's shares (rows summing to 1; NaN for a clip without mass)."""
    v = values.double().numpy()
    total = v.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, v / np.where(total > 0, total, 1.0), np.nan)


def region_profile(scores: MapScores) -> pd.DataFrame:
    """Per class (and "all") and map, the facial-region profile as a long table.

    Columns: ``class``, ``map`` (each map of ``scores``, then "ground truth" when there is one),
    ``region``, ``share`` (mean over the clips of the share of the map's positive mass in the
    region), ``area`` (mean share of the pixels), ``enrichment`` = share / area (1 = a map spread
    evenly; NaN where the region is absent), ``clips`` and ``source`` (where the regions come from).
    """
    maps = dict(scores.region_mass)
    if scores.truth_mass is not None:
        maps[GROUND_TRUTH] = scores.truth_mass
    area = _shares(scores.region_area)
    shares = {name: _shares(m) for name, m in maps.items()}
    groups = [(name, scores.labels == c) for c, name in enumerate(scores.class_names)]
    groups.append(("all", np.ones(len(scores.labels), dtype=bool)))
    records = []
    for class_name, keep in groups:
        if not keep.any():
            continue
        region_area = area[keep].mean(axis=0)
        for name, share in shares.items():
            with np.errstate(invalid="ignore"):
                mean_share = np.nanmean(share[keep], axis=0) if np.isfinite(share[keep]).any() else np.full(len(REGIONS), np.nan)
            for r, region in enumerate(REGIONS):
                records.append({"class": class_name, "map": name, "region": region, "share": mean_share[r],
                                "area": region_area[r],
                                "enrichment": mean_share[r] / region_area[r] if region_area[r] > 0 else np.nan,
                                "clips": int(keep.sum()), "source": scores.region_source})
    return pd.DataFrame.from_records(records)


#: The columns of :func:`agreement_table`.
AGREEMENT_COLUMNS = ("clips", "mass_in_mask", "mask_area", "ratio", "pointing_game", "auroc", "auroc_face")


def agreement_table(scores: MapScores) -> pd.DataFrame:
    """Per map, its agreement with the ground truth over the scored clips (means over the clips with
    a score): ``clips``, ``mass_in_mask``, ``mask_area`` (chance for the mass), ``ratio`` (> 1:
    concentrated on the ground truth), ``pointing_game``, ``auroc`` (0.5 = chance) and
    ``auroc_face`` (the AUROC within the face: the signal parts against the rest of the face). The
    last row, :data:`~analysis.internals.ground_truth.CENTRE_PRIOR`, scores a fixed Gaussian over the
    centre of the crop the same way: the figures a model gets for free on centred face crops. Empty
    without ground truth."""
    if scores.mask_area is None:
        return pd.DataFrame(columns=list(AGREEMENT_COLUMNS))
    area = float(scores.mask_area.mean())
    records = []
    for name in scores.auroc:  # the maps, then the centre prior
        share = float(torch.nanmean(scores.mass_in_mask[name]))
        records.append({"map": name, "clips": len(scores.positions), "mass_in_mask": share, "mask_area": area,
                        "ratio": share / area if area > 0 else float("nan"),
                        "pointing_game": float(torch.nanmean(scores.pointing_game[name])),
                        "auroc": float(torch.nanmean(scores.auroc[name])),
                        "auroc_face": float(torch.nanmean(scores.auroc_face[name]))})
    return pd.DataFrame.from_records(records, columns=["map", *AGREEMENT_COLUMNS]).set_index("map")


def best_localising_map(scores: MapScores, prefix: str = "attention ") -> str | None:
    """The map (among those starting with ``prefix``) with the highest mean AUROC against the ground
    truth; without ground truth the last such map (the deepest stage). None when there is none."""
    names = [n for n in scores.map_names if n.startswith(prefix)]
    if not names:
        return None
    if not scores.auroc:
        return names[-1]
    return max(names, key=lambda n: float(torch.nanmean(scores.auroc[n])))


def _class_profile(profile: pd.DataFrame, class_name: str) -> pd.DataFrame:
    part = profile[profile["class"] == class_name]
    if part.empty:
        raise ValueError(f"no region profile for class {class_name!r}; classes: {sorted(set(profile['class']))}")
    return part


def plot_region_profile(profile: pd.DataFrame, class_name: str) -> Figure:
    """One class's profile: per region, each map's enrichment (share of its mass / share of the
    pixels) as bars, the ground truth's as outlined bars, 1 (a map spread evenly) dashed."""
    part = _class_profile(profile, class_name)
    present = [r for r in REGIONS if part[(part["region"] == r)]["area"].max() > 0]
    names = list(dict.fromkeys(part["map"]))
    fig = new_figure(1.2 + 0.9 * len(present), 3.6)
    ax = fig.subplots()
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(present))
    colours = iter(["#0072B2", "#56B4E9", "#009E73", "#E69F00", "#CC79A7", "#D55E00", "#7F7F7F"])
    for k, name in enumerate(names):
        values = part[part["map"] == name].set_index("region").reindex(present)["enrichment"].to_numpy()
        offset = (k - (len(names) - 1) / 2) * width
        if name == GROUND_TRUTH:
            ax.bar(x + offset, np.nan_to_num(values), width, facecolor="none", edgecolor="black", hatch="//",
                   label=name)
        else:
            ax.bar(x + offset, np.nan_to_num(values), width, color=next(colours, "#7F7F7F"), label=TITLES.get(name, name))
    ax.axhline(1.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_xticks(x, labels=present, fontsize=8)
    ax.set_ylabel("share of mass / share of pixels")
    source = part["source"].iloc[0]
    ax.set_title(f"{class_name}: where the evidence sits, by facial region ({int(part['clips'].iloc[0])} clips)"
                 + ("\napproximate regions (canonical template)" if source == "template" else ""), fontsize=10)
    ax.legend(fontsize=7, ncol=min(3, len(names)))
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_region_heat_table(profile: pd.DataFrame, map_name: str, class_names: Sequence[str] | None = None) -> Figure:
    """Classes x regions: ``map_name``'s enrichment per cell (log scale around 1, value written in), the
    regions that carry each class's signal (ground-truth share >= 5 %) outlined."""
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    part = profile[(profile["map"] == map_name) & (profile["class"] != "all")]
    if part.empty:
        raise ValueError(f"no map {map_name!r} in the profile; maps: {sorted(set(profile['map']))}")
    classes = [c for c in (class_names or list(dict.fromkeys(part["class"]))) if c in set(part["class"])]
    present = [r for r in REGIONS if part[part["region"] == r]["area"].max() > 0]
    table = part.pivot(index="class", columns="region", values="enrichment").reindex(index=classes, columns=present)
    values = table.to_numpy(dtype=np.float64)
    fig = new_figure(1.6 + 0.85 * len(present), 1.0 + 0.42 * len(classes))
    ax = fig.subplots()
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log2(np.clip(values, 1 / 4, 4))
    image = ax.imshow(np.ma.masked_invalid(logs), cmap="RdBu_r", norm=TwoSlopeNorm(0.0, -2.0, 2.0), aspect="auto")
    for i in range(len(classes)):
        for j in range(len(present)):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(logs[i, j]) > 1.4 else "black")
    truth = profile[(profile["map"] == GROUND_TRUTH) & (profile["class"] != "all")]
    if not truth.empty:
        signal = truth.pivot(index="class", columns="region", values="share").reindex(index=classes, columns=present)
        for i, j in zip(*np.nonzero(signal.fillna(0).to_numpy() >= 0.05)):
            ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, edgecolor="black", linewidth=1.6))
    ax.set_xticks(range(len(present)), labels=present, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), labels=classes, fontsize=8)
    colorbar = fig.colorbar(image, ax=ax, shrink=0.85, ticks=[-2, -1, 0, 1, 2])
    colorbar.ax.set_yticklabels(["1/4", "1/2", "1", "2", "4"])
    colorbar.set_label("share of mass / share of pixels", fontsize=8)
    source = part["source"].iloc[0]
    outline = "; outlined: regions carrying the class signal" if not truth.empty else ""
    ax.set_title(f"{TITLES.get(map_name, map_name)} by facial region{outline}"
                 + ("\n(approximate regions: canonical template)" if source == "template" else ""), fontsize=9)
    return fig


def write_region_table(run_dir: str | os.PathLike, out: str | os.PathLike, methods: Sequence[str] = (),
                       small: bool = False, device: str = "auto", max_clips: int | None = None,
                       checkpoint: str = "auto", progress: bool = False) -> Path:
    """The region profile (:func:`region_profile`) of a run's analysed clips, written to ``out`` as CSV
    (atomically). Attention stages always; ``methods`` add attributions. Returns ``out``."""
    from analysis.internals.run import open_run
    from tdrag import ownership
    from tdrag.atomic import atomic_path

    out = Path(out)
    with ownership.hold_output(out, "regions"):  # a second writer of the same file refuses meanwhile
        _check_replaceable(out)
        run = open_run(run_dir, device=device, max_clips=max_clips, checkpoint=checkpoint, progress=progress)
        if not run.has_attention and not methods:
            raise ValueError(f"{run_dir}: the model has no attention stages; name attribution methods to profile")
        profile = region_profile(score_maps(run, range(len(run)), methods, small=small))
        _check_replaceable(out)  # again: something may have appeared there meanwhile
        with atomic_path(out) as tmp:
            profile.to_csv(tmp, index=False, float_format="%.6g")
    return out


#: How a region profile CSV begins: what makes a file one tdrag wrote (and so may replace).
PROFILE_HEADER = "class,map,region,"


def _check_replaceable(out: Path) -> None:
    """Refuse an ``out`` that exists and is not a region profile (a folder, a user's file)."""
    if not (out.exists() or out.is_symlink()):
        return
    if not out.is_file() or out.is_symlink():
        raise OutputError(f"{out}: exists and is not a file; choose another --out")
    with open(out, "rb") as handle:
        head = handle.read(len(PROFILE_HEADER)).decode("utf-8", "replace")
    if head != PROFILE_HEADER:
        raise OutputError(f"{out}: exists and is not a region profile tdrag wrote (it does not begin "
                          f"{PROFILE_HEADER!r}); refusing to replace it, choose another --out")
