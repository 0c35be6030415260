"""The one loop that scores maps against the synthetic ground truth, clip chunk by clip chunk.

Attention tables (:func:`analysis.internals.attention.attention_in_ground_truth`), region profiles
(:func:`analysis.report.region_profile.score_maps`) and the ablation's attention scores
(:mod:`analysis.experiments.attention`) all go through :class:`AgreementTally`, so a figure named
"AUROC" or "mass in mask" means the same thing in every table::

    agreement = score_chunks(np.arange(len(run)), run.attention_maps, partial(run_truth, run))
    agreement.scores["layer3"]["auroc"].shape      # (N,) per clip; the centre prior scored last
    agreement.means()["layer3"]["mass_in_mask"]    # nanmean over the clips with a score

Each chunk is scored by :func:`analysis.internals.ground_truth.agreement_with_truth` (mass in mask,
AUROC over the crop and within the face, any ``extra`` score such as the pointing game, and the
same of the centre prior); the tally keeps the per-clip values and each clip's mask area (what a
uniform map's mass in mask would be: chance).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from analysis.internals.ground_truth import agreement_with_truth, ground_truth_masks
from analysis.internals.regions import face_pixels, has_region_maps, region_label_maps, run_region_maps

#: ``score(maps (B, T, H, W), masks (B, T, H, W)) -> (B,)``, e.g. the pointing game.
Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ClipAgreement:
    """Per-clip agreement of named maps with the ground truth over N clips.

    Attributes:
        scores: map name -> score name -> ``(N,)`` float32 (``mass_in_mask``, ``auroc``,
            ``auroc_face``, then the ``extra`` scores); the maps in the order given, the centre
            prior (``ground_truth.CENTRE_PRIOR``) last. NaN where a clip has nothing to score.
        mask_area: ``(N,)`` float32 share of each clip's pixels inside its masks.
    """

    scores: dict[str, dict[str, torch.Tensor]]
    mask_area: torch.Tensor

    def __len__(self) -> int:
        return int(self.mask_area.shape[0])

    def by_score(self, score: str) -> dict[str, torch.Tensor]:
        """map name -> ``(N,)`` values of one score (``"auroc"``, ...)."""
        return {name: values[score] for name, values in self.scores.items()}

    @property
    def chance(self) -> float:
        """Mean mask area over the clips: the mass in mask of a uniform map."""
        return float(self.mask_area.double().mean())

    def means(self) -> dict[str, dict[str, float]]:
        """map name -> score name -> mean over the clips with a score (NaN skipped, in float64)."""
        return {name: {key: float(torch.nanmean(values.double())) for key, values in entry.items()}
                for name, entry in self.scores.items()}


class AgreementTally:
    """The loop's body: :meth:`add` one chunk of clips after another, :meth:`result` at the end.

    Args:
        extra: more per-clip scores, name -> ``score(maps, masks) -> (B,)`` (e.g. the pointing
            game of :mod:`analysis.attribution.faithfulness`, which this layer cannot import).
    """

    def __init__(self, extra: Mapping[str, Score] | None = None) -> None:
        self.extra = dict(extra or {})
        self._scores: dict[str, dict[str, list[torch.Tensor]]] = {}
        self._areas: list[torch.Tensor] = []

    def add(self, maps: Mapping[str, torch.Tensor], masks: torch.Tensor, face: torch.Tensor | None = None) -> None:
        """Score one chunk.

        Args:
            maps: name -> ``(B, T, H, W)`` maps at the masks' size.
            masks: ``(B, T, H, W)`` bool ground truth.
            face: ``(B, T, H, W)`` bool face pixels, or None (then ``auroc_face`` is NaN).
        """
        masks = torch.as_tensor(masks)
        self._areas.append(masks.flatten(1).float().mean(1).cpu())
        for name, entry in agreement_with_truth(maps, masks, face, self.extra).items():
            for key, values in entry.items():
                self._scores.setdefault(name, {}).setdefault(key, []).append(values)

    def result(self) -> ClipAgreement:
        """Every chunk added so far, concatenated in order (no clips: empty scores)."""
        return ClipAgreement(
            scores={name: {key: torch.cat(parts) for key, parts in entry.items()} for name, entry in self._scores.items()},
            mask_area=torch.cat(self._areas) if self._areas else torch.zeros(0),
        )


def score_chunks(
    positions: np.ndarray,
    maps_of: Callable[[np.ndarray], Mapping[str, torch.Tensor]],
    truth_of: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor | None]],
    extra: Mapping[str, Score] | None = None,
    chunk: int = 16,
) -> ClipAgreement:
    """Score the maps of the clips at ``positions``, ``chunk`` clips at a time (bounds memory).

    Args:
        positions: ``(N,)`` clip positions, in the order the result keeps.
        maps_of: positions ``(B,)`` -> name -> ``(B, T, H, W)`` maps at frame size.
        truth_of: positions ``(B,)`` -> ``(masks (B, T, H, W) bool, face (B, T, H, W) bool or None)``
            (:func:`run_truth`, :func:`cache_truth`).
        extra: more scores (see :class:`AgreementTally`).
    """
    positions = np.asarray(positions, dtype=np.int64)
    tally = AgreementTally(extra)
    for start in range(0, len(positions), int(chunk)):
        part = positions[start : start + int(chunk)]
        masks, face = truth_of(part)
        tally.add(maps_of(part), masks, face)
    return tally.result()


def cache_truth(cache, rows: np.ndarray, root, crop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Ground-truth masks ``(B, T, crop, crop)`` of cache ``rows`` and the face's pixels (None for a
    set rendered without region maps), aligned with ``eval_transform(..., crop)``."""
    masks = ground_truth_masks(cache, rows, root, crop)
    face = face_pixels(region_label_maps(cache, rows, root, crop)) if has_region_maps(root) else None
    return masks, face


def run_truth(run, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`cache_truth` of an opened run's clips at ``positions`` (synthetic runs only)."""
    labels, source = run_region_maps(run, positions)
    # The template's regions are approximate: the face AUROC is scored on the renderer's only.
    return run.masks(positions), face_pixels(labels) if source == "renderer" else None
