"""analysis.internals.agreement: the one agreement loop, by hand and against the tables that use it."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from analysis.internals.agreement import AgreementTally, cache_truth, run_truth, score_chunks
from analysis.internals.ground_truth import CENTRE_PRIOR, agreement_with_truth


def hand_made() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """3 clips of 2 frames of 8x8: masks on a 2x2 square (clip 2: a 4x4 one), an exact map, a flat
    map and a map outside the mask."""
    masks = torch.zeros(3, 2, 8, 8, dtype=torch.bool)
    masks[:2, :, 2:4, 2:4] = True
    masks[2, :, :4, :4] = True
    exact = masks.float()
    flat = torch.full((3, 2, 8, 8), 0.5)
    outside = torch.zeros(3, 2, 8, 8)
    outside[:, :, 6:, 6:] = 1.0
    return masks, exact, {"exact": exact, "flat": flat, "outside": outside}


def test_scores_and_chance_worked_out_by_hand():
    masks, _, maps = hand_made()
    tally = AgreementTally()
    tally.add(maps, masks)
    agreement = tally.result()
    assert list(agreement.scores) == ["exact", "flat", "outside", CENTRE_PRIOR]  # the prior last
    torch.testing.assert_close(agreement.mask_area, torch.tensor([4 / 64, 4 / 64, 16 / 64]))
    assert agreement.chance == pytest.approx((4 + 4 + 16) / 64 / 3)
    means = agreement.means()
    assert means["exact"]["mass_in_mask"] == pytest.approx(1.0) and means["exact"]["auroc"] == pytest.approx(1.0)
    # A flat map's mass is the mask's area (chance) and its AUROC 0.5: every pixel ties.
    torch.testing.assert_close(agreement.scores["flat"]["mass_in_mask"], agreement.mask_area)
    assert means["flat"]["auroc"] == pytest.approx(0.5)
    assert means["outside"]["mass_in_mask"] == 0.0 and means["outside"]["auroc"] < 0.5
    # Without the face's pixels the face AUROC is unknown, not 0.
    assert torch.isnan(agreement.scores["exact"]["auroc_face"]).all()
    assert agreement.by_score("auroc")["exact"].shape == (3,)


def test_chunks_give_the_figures_of_one_pass():
    masks, _, maps = hand_made()
    face = torch.zeros_like(masks)
    face[:, :, :5, :5] = True
    extra = {"peak": lambda m, k: m.flatten(1).amax(1)}
    whole = agreement_with_truth(maps, masks, face, extra)
    chunked = score_chunks(np.arange(3), lambda part: {k: v[part] for k, v in maps.items()},
                           lambda part: (masks[part], face[part]), extra=extra, chunk=2)
    assert set(chunked.scores) == set(whole)
    for name, entry in whole.items():
        assert list(chunked.scores[name]) == ["mass_in_mask", "auroc", "auroc_face", "peak"]
        for key, values in entry.items():
            torch.testing.assert_close(chunked.scores[name][key], values, equal_nan=True)
    # Clips in the order given: the positions pick the maps and masks of the same clips.
    reordered = score_chunks(np.array([2, 0]), lambda part: {"exact": maps["exact"][part]},
                             lambda part: (masks[part], None), chunk=1)
    torch.testing.assert_close(reordered.mask_area, torch.tensor([16 / 64, 4 / 64]))


def test_nothing_scored_is_empty():
    agreement = AgreementTally().result()
    assert len(agreement) == 0 and agreement.scores == {}


@pytest.fixture(scope="module")
def opened(tiny_run):
    from analysis.internals.run import open_run

    return open_run(tiny_run, device="cpu", progress=False)


def test_a_run_scored_in_chunks_matches_one_pass_over_all_clips(opened):
    """The loop against agreement_with_truth called once on every clip of the run's test fold."""
    positions = np.arange(len(opened))
    agreement = score_chunks(positions, opened.attention_maps, partial(run_truth, opened), chunk=3)
    masks, face = cache_truth(opened.cache, opened.rows, opened.data_root, opened.crop)
    whole = agreement_with_truth(opened.attention_maps(positions), masks, face)
    assert len(agreement) == len(opened) and set(agreement.scores) == set(whole)
    for name, entry in whole.items():
        for key, values in entry.items():
            torch.testing.assert_close(agreement.scores[name][key], values, equal_nan=True)
    assert not torch.isnan(agreement.scores[CENTRE_PRIOR]["auroc_face"]).all()  # the renderer's regions are used


def test_the_attention_table_and_the_region_profile_read_the_same_loop(opened):
    """Two analysis tables that score attention against the ground truth give the loop's figures."""
    from analysis.internals.attention import attention_in_ground_truth
    from analysis.report.region_profile import agreement_table, score_maps

    agreement = score_chunks(np.arange(len(opened)), opened.attention_maps, partial(run_truth, opened))
    means = agreement.means()
    by_class = attention_in_ground_truth(opened.inspection, opened.cache, opened.data_root, opened.crop)
    profile = agreement_table(score_maps(opened, range(len(opened))))
    for stage in opened.attention:
        row = by_class.loc[(stage, "all")]
        assert row["auroc"] == pytest.approx(means[stage]["auroc"], rel=1e-5)
        assert row["mass_in_mask"] == pytest.approx(means[stage]["mass_in_mask"], rel=1e-5)
        assert row["mask_area"] == pytest.approx(agreement.chance, rel=1e-5)
        entry = profile.loc[f"attention {stage}"]
        assert entry["auroc_face"] == pytest.approx(means[stage]["auroc_face"], rel=1e-5)
        assert entry["ratio"] == pytest.approx(means[stage]["mass_in_mask"] / agreement.chance, rel=1e-5)
