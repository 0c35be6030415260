"""analysis.attribution.faithfulness: agreement with ground-truth masks and the scores table."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.attribution.faithfulness import faithfulness_scores, faithfulness_summary, pointing_game, relevance_mass
from tdrag.data.labels import DFEW_CLASSES
from tests.analysis.attribution_models import H, T, W, RegionModel, region_clips, region_mask

@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random clips whatever ran before it."""
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# Pointing game / relevance mass


def _masks() -> torch.Tensor:
    masks = torch.zeros(2, 3, 6, 6, dtype=torch.bool)
    masks[:, :2, 1:3, 1:3] = True  # frames 0 and 1 have ground truth, frame 2 none
    return masks


def test_pointing_game_hits_misses_and_tolerance():
    masks = _masks()
    maps = torch.zeros(2, 3, 6, 6)
    maps[0, 0, 2, 2] = 1.0  # clip 0: frame 0 hit
    maps[0, 1, 5, 5] = 1.0  # clip 0: frame 1 far miss
    maps[0, 2, 2, 2] = 9.0  # frame 2 has no mask: ignored per frame
    maps[1, 0, 3, 3] = 1.0  # clip 1: near misses (one pixel off the mask's corner)
    maps[1, 1, 3, 1] = 1.0
    per_frame = pointing_game(maps, masks)
    assert per_frame.tolist() == [0.5, 0.0]
    assert pointing_game(maps, masks, tolerance=1).tolist() == [0.5, 1.0]
    # Per clip: clip 0's single maximum (9.0) lies on frame 2, where there is no mask.
    assert pointing_game(maps, masks, per="clip").tolist() == [0.0, 0.0]


def test_pointing_game_flat_map_scores_chance_and_empty_truth_is_nan():
    masks = _masks()
    flat = torch.ones(2, 3, 6, 6)
    assert torch.allclose(pointing_game(flat, masks), torch.full((2,), 4 / 36))
    assert math.isnan(float(pointing_game(flat[:1], torch.zeros(1, 3, 6, 6, dtype=torch.bool))[0]))
    with pytest.raises(ValueError, match="differ in shape"):
        pointing_game(flat, masks[:, :2])


def test_relevance_mass():
    masks = _masks()
    maps = torch.zeros(2, 3, 6, 6)
    maps[0, 0, 1, 1] = 3.0  # inside
    maps[0, 2, 4, 4] = 1.0  # outside
    maps[0, 1, 5, 5] = -5.0  # negative: ignored unless absolute
    maps[1] = torch.ones(3, 6, 6)
    assert torch.allclose(relevance_mass(maps, masks), torch.tensor([0.75, 8 / 108]))
    assert math.isclose(float(relevance_mass(maps, masks, absolute=True)[0]), 3 / 9, rel_tol=1e-6)
    assert math.isnan(float(relevance_mass(torch.zeros(1, 3, 6, 6), masks[:1])[0]))


# ---------------------------------------------------------------------------------------------
# Summary


def test_faithfulness_summary_per_method_and_class():
    model, x = RegionModel(), region_clips(4)
    labels = torch.tensor([1, 1, 1, 1])
    masks = region_mask().expand(4, T, H, W)
    methods = {"saliency": {}, "integrated_gradients": {"n_steps": 8}, "frame_ablation": {}}
    scores = faithfulness_scores(model, x, labels, methods, masks=masks, steps=4, batch_size=2, progress=False)
    assert set(scores["method"]) == {"saliency", "integrated_gradients", "frame_ablation", "random"}
    assert len(scores) == 4 * 4
    sal = scores[scores["method"] == "saliency"]
    rnd = scores[scores["method"] == "random"]
    assert (sal["pointing_game"] == 1.0).all() and (sal["relevance_mass"] > 0.5).all()
    # Saliency is highest on the region's pixels: AUROC 1 on the one frame with ground truth;
    # random maps rank pixels at chance.
    assert (sal["auroc"] == 1.0).all() and abs(rnd["auroc"].mean() - 0.5) < 0.2
    assert sal["deletion_auc"].mean() < rnd["deletion_auc"].mean()
    assert scores[scores["method"] == "frame_ablation"][["pointing_game", "auroc"]].isna().all().all()
    assert scores[scores["method"] == "integrated_gradients"]["completeness_gap"].notna().all()

    summary = faithfulness_summary(
        model, x, labels, ["saliency"], masks=masks, class_names=DFEW_CLASSES, steps=4, batch_size=4,
        include_random=False, progress=False
    )
    assert list(summary.columns) == [
        "method", "class", "n", "deletion_auc", "insertion_auc", "pointing_game", "relevance_mass", "auroc",
        "completeness_gap",
    ]
    assert summary["class"].tolist() == ["Sad", "all"]  # label 1 is Sad in DFEW order
    assert summary["n"].tolist() == [4, 4]
