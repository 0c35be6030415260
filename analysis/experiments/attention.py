"""A run's attention against the synthetic ground truth, per stage, as the ablation table reports it.

The run is opened for analysis (``analysis.internals.run.open_run``: its default checkpoint, chosen
on the validation split, never the test fold; its one cached inspection pass over the test fold)
and scored by the shared agreement loop (``analysis.internals.agreement``), the loop the attention
tables and region profiles use too::

    stages = attention_agreement("runs/ablation/runs/tdrag/seed_0")
    stages["layer3"].auroc, stages["centre_prior"].auroc     # a stage against the reference map
"""

from __future__ import annotations

import os
from functools import partial

import numpy as np

from analysis.attribution.faithfulness import pointing_game
from analysis.experiments.results import StageAgreement
from analysis.internals.agreement import run_truth, score_chunks
from analysis.internals.ground_truth import CENTRE_PRIOR

#: The key of the centre prior (a fixed map that knows no model) among the stages.
CENTRE_PRIOR_KEY = "centre_prior"


def stage_agreements(agreement) -> dict[str, StageAgreement]:
    """A :class:`~analysis.internals.agreement.ClipAgreement` averaged over its clips, per stage
    (the centre prior under :data:`CENTRE_PRIOR_KEY`)."""
    chance = agreement.chance
    return {(CENTRE_PRIOR_KEY if name == CENTRE_PRIOR else name): StageAgreement(
                mass=m["mass_in_mask"], auroc=m["auroc"], auroc_face=m["auroc_face"],
                pointing_game=m["pointing_game"], chance=chance)
            for name, m in agreement.means().items()}


def attention_agreement(run_dir: str | os.PathLike, data_root: str | os.PathLike | None = None,
                        batch: int = 16, device: str = "cpu") -> dict[str, StageAgreement] | None:
    """Each attention stage of a run, scored on its test fold against the ground truth: mass in the
    signal masks (and their area, chance), AUROC over the crop and within the face, pointing game;
    beside them the centre prior's. None for a model without attention.

    Args:
        run_dir: a trained run on a synthetic set.
        data_root: the synthetic set (masks, region maps), when not at the run's ``data.root``.
        batch: clips per inspection batch and per scored chunk.
    """
    from analysis.internals.run import open_run

    run = open_run(run_dir, split="test", device=device, data_root=data_root, batch_size=batch, progress=False)
    if not run.has_attention:
        return None
    if not run.synthetic:
        raise ValueError(f"{run_dir}: no synthetic ground truth at {run.data_root or run.config.data.root}")
    agreement = score_chunks(np.arange(len(run)), run.attention_maps, partial(run_truth, run),
                             extra={"pointing_game": pointing_game}, chunk=batch)
    return stage_agreements(agreement)
