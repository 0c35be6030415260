"""analysis.attribution.perturbation: deletion and insertion curves, baselines, ranks."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.attribution.attribute import attribute
from analysis.attribution.perturbation import blur_clips, deletion_curve, insertion_curve, random_maps, ranks_of
from tests.analysis.attribution_models import FRAME, H, T, W, RegionModel, region_clips, region_mask

@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random clips whatever ran before it."""
    torch.manual_seed(0)


def test_deleting_the_true_region_first_drops_faster_than_random():
    model, x = RegionModel(), region_clips(3)
    truth = region_mask().float().expand(3, T, H, W)
    rand = random_maps(truth, seed=1)
    true_del = deletion_curve(model, x, 1, truth, steps=8)
    rand_del = deletion_curve(model, x, 1, rand, steps=8)
    assert true_del.scores.shape == (3, 9) and true_del.fractions[0] == 0 and true_del.fractions[-1] == 1
    assert (true_del.auc < rand_del.auc).all()
    # Both start from the intact clip and end at the all-baseline clip.
    assert torch.allclose(true_del.scores[:, 0], rand_del.scores[:, 0])
    assert torch.allclose(true_del.scores[:, -1], rand_del.scores[:, -1])
    true_ins = insertion_curve(model, x, 1, truth, steps=8)
    rand_ins = insertion_curve(model, x, 1, rand, steps=8)
    assert (true_ins.auc > rand_ins.auc).all()
    with torch.no_grad():
        p = model(x).softmax(1)[:, 1]
    assert torch.allclose(true_ins.scores[:, -1], p, atol=1e-6)  # everything inserted = the clip


def test_frame_maps_remove_whole_frames():
    model, x = RegionModel(), region_clips(2)
    frame_map = torch.zeros(2, T)
    frame_map[:, FRAME] = 1.0
    curve = deletion_curve(model, x, 1, frame_map, steps=T)
    # After the first step only the known frame is gone, and the model depends on nothing else
    # but a 1 % global share: the score is already near its final value.
    drop_first = curve.scores[:, 0] - curve.scores[:, 1]
    drop_total = curve.scores[:, 0] - curve.scores[:, -1]
    assert (drop_first > 0.9 * drop_total).all()


def test_curve_auc_is_the_trapezoid_and_logit_scores_work():
    model, x = RegionModel(), region_clips(1)
    maps = attribute(model, x, 1, "saliency")
    curve = deletion_curve(model, x, 1, maps, steps=4, score="logit")
    f, s = curve.fractions.tolist(), curve.scores[0].tolist()
    by_hand = sum((f[i + 1] - f[i]) * (s[i] + s[i + 1]) / 2 for i in range(4))
    assert math.isclose(float(curve.auc[0]), by_hand, rel_tol=1e-5)
    with torch.no_grad():
        assert math.isclose(s[0], float(model(x)[0, 1]), rel_tol=1e-5)


def test_perturbation_curve_rejects_bad_arguments():
    model, x = RegionModel(), region_clips(1)
    with pytest.raises(ValueError, match="do not fit clips"):
        deletion_curve(model, x, 1, torch.zeros(1, T, H))
    with pytest.raises(ValueError, match="baseline"):
        deletion_curve(model, x, 1, torch.zeros(1, T), baseline="noise")


def test_blur_keeps_a_constant_clip_and_smooths_an_edge():
    flat = torch.full((1, 3, 2, 12, 12), 0.7)
    assert torch.allclose(blur_clips(flat, 1.5), flat, atol=1e-6)
    edge = torch.zeros(1, 3, 2, 12, 12)
    edge[..., 6:] = 1.0
    blurred = blur_clips(edge, 1.5)
    assert 0 < blurred[0, 0, 0, 0, 5] < 0.5 < blurred[0, 0, 0, 0, 6] < 1


def test_ranks_break_ties_randomly_but_keep_order():
    maps = torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    r = ranks_of(maps, torch.Generator().manual_seed(0))
    assert r[0, 0] == 0 and r[0, 9] == 1 and sorted(r[0].tolist()) == list(range(10))
    orders = {tuple(ranks_of(maps, torch.Generator().manual_seed(s))[0, 1:9].tolist()) for s in range(5)}
    assert len(orders) > 1  # ties are not ordered by position
