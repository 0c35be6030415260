"""analysis.report.region_profile: the profile worked out by hand, one scoring pass on a real run
checked against its parts, the figures, the CSV and ``python -m analysis regions``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure

from analysis.report import region_profile as rp
from tdrag.data.synthetic import REGIONS

R = {name: i for i, name in enumerate(REGIONS)}


def hand_scores() -> rp.MapScores:
    """Three clips (classes a, a, b); areas over eyes / mouth / outside; one map and the ground truth."""
    def rows(*values):
        out = torch.zeros(len(values), len(REGIONS), dtype=torch.float64)
        for i, row in enumerate(values):
            for region, v in row.items():
                out[i, R[region]] = v
        return out

    area = rows({"eyes": 10, "mouth": 10, "outside": 80}, {"eyes": 10, "mouth": 10, "outside": 80},
                {"eyes": 20, "mouth": 20, "outside": 60})
    mass = rows({"eyes": 3, "mouth": 1}, {"eyes": 1, "mouth": 1, "outside": 2}, {})  # clip 3: no mass at all
    truth = rows({"mouth": 10}, {"mouth": 10}, {"eyes": 20})
    return rp.MapScores(positions=np.arange(3), labels=np.array([0, 0, 1]), class_names=("a", "b"),
                        region_source="renderer", region_mass={"m": mass}, region_area=area, truth_mass=truth)


def test_profile_worked_out_by_hand():
    profile = rp.region_profile(hand_scores())
    assert list(profile.columns) == ["class", "map", "region", "share", "area", "enrichment", "clips", "source"]
    cell = profile.set_index(["class", "map", "region"])
    # Class a: shares (3/4, 1/4, 0) and (1/4, 1/4, 1/2) average to (1/2, 1/4, 1/4); areas (0.1, 0.1, 0.8).
    assert cell.loc[("a", "m", "eyes"), "share"] == pytest.approx(0.5)
    assert cell.loc[("a", "m", "eyes"), "enrichment"] == pytest.approx(5.0)
    assert cell.loc[("a", "m", "outside"), "enrichment"] == pytest.approx(0.25 / 0.8)
    assert cell.loc[("a", "ground truth", "mouth"), "enrichment"] == pytest.approx(10.0)
    assert cell.loc[("a", "ground truth", "eyes"), "share"] == 0.0
    # Class b's one clip has no mass: its shares are unknown, not zero.
    assert np.isnan(cell.loc[("b", "m", "eyes"), "share"])
    # "all": the mean over the clips that have mass.
    assert cell.loc[("all", "m", "eyes"), "share"] == pytest.approx(0.5)
    assert cell.loc[("all", "m", "eyes"), "area"] == pytest.approx((0.1 + 0.1 + 0.2) / 3)
    assert np.isnan(cell.loc[("a", "m", "nose"), "enrichment"])  # a region with no pixels
    shares = profile[(profile["class"] == "a") & (profile["map"] == "m")]["share"]
    assert shares.sum() == pytest.approx(1.0)


def test_heat_table_outlines_the_signal_regions():
    profile = rp.region_profile(hand_scores())
    fig = rp.plot_region_heat_table(profile, "m")
    assert isinstance(fig, Figure)
    outlined = [p for p in fig.axes[0].patches]
    assert len(outlined) == 2  # class a: mouth; class b: eyes
    assert isinstance(rp.plot_region_profile(profile, "a"), Figure)
    with pytest.raises(ValueError, match="no map 'x'"):
        rp.plot_region_heat_table(profile, "x")


@pytest.fixture(scope="module")
def scored(tiny_run):
    from analysis.internals.run import open_run

    run = open_run(tiny_run, device="cpu", progress=False)
    return run, rp.score_maps(run, range(len(run)), methods=["layercam", "frame_ablation"], chunk=3)


def test_one_pass_agrees_with_its_parts(scored):
    from analysis.attribution.attribute import attribute_clips
    from analysis.internals.ground_truth import CENTRE_PRIOR, auroc_in_mask, centre_prior
    from analysis.internals.regions import above_floor, face_pixels, region_masses, run_region_maps

    run, scores = scored
    n, pixels = len(run), run.cache.num_frames * run.crop * run.crop
    assert scores.map_names == [f"attention {s}" for s in run.attention] + ["layercam"]  # frame ablation: no map
    assert scores.region_source == "renderer"
    torch.testing.assert_close(scores.region_area.sum(1), torch.full((n,), float(pixels), dtype=torch.float64))
    masks = run.masks(range(n))
    torch.testing.assert_close(scores.truth_mass.sum(1), masks.flatten(1).sum(1).double())
    stage = next(iter(run.attention))
    attention = run.attention_maps(range(n), [stage])[stage]
    torch.testing.assert_close(scores.region_mass[f"attention {stage}"].sum(1), above_floor(attention).flatten(1).sum(1))
    torch.testing.assert_close(scores.auroc[f"attention {stage}"], auroc_in_mask(attention, masks))
    layercam = attribute_clips(run, [0, 1], "layercam")
    labels, _ = run_region_maps(run, [0, 1])
    # LayerCAM in float32 over chunks of 3 clips there, 2 here: the batch changes the summation
    # order, so the masses (summed in float64) agree to float32 precision, not float64's.
    torch.testing.assert_close(scores.region_mass["layercam"][:2], region_masses(layercam, labels), rtol=1e-5, atol=1e-6)
    c = int(run.labels[0])
    mean = attention[run.labels == c].mean(dim=(0, 1))
    torch.testing.assert_close(scores.class_mean_maps[f"attention {stage}"][c], mean)
    table = rp.agreement_table(scores)
    assert list(table.columns) == ["clips", "mass_in_mask", "mask_area", "ratio", "pointing_game", "auroc",
                                   "auroc_face"]
    assert table.loc[f"attention {stage}", "auroc"] == pytest.approx(float(torch.nanmean(auroc_in_mask(attention, masks))))
    face = face_pixels(run_region_maps(run, range(n))[0])
    assert table.loc[f"attention {stage}", "auroc_face"] == pytest.approx(
        float(torch.nanmean(auroc_in_mask(attention, masks, within=face))))
    # The centre prior, last, scored the same way; it is no map of the model (not in map_names).
    assert list(table.index) == [*scores.map_names, CENTRE_PRIOR]
    prior = centre_prior(run.crop).expand_as(masks)
    assert table.loc[CENTRE_PRIOR, "auroc"] == pytest.approx(float(torch.nanmean(auroc_in_mask(prior, masks))))
    assert table.loc[CENTRE_PRIOR, "auroc_face"] == pytest.approx(
        float(torch.nanmean(auroc_in_mask(prior, masks, within=face))))
    assert rp.best_localising_map(scores) in scores.map_names


def test_the_csv_and_the_command(tiny_run, tmp_path, capsys):
    from analysis.report.cli import main

    out = rp.write_region_table(tiny_run, tmp_path / "deep" / "regions.csv", device="cpu")
    table = pd.read_csv(out)
    assert set(table["region"]) == set(REGIONS) and "ground truth" in set(table["map"])
    assert main(["regions", str(tiny_run), "--out", str(tmp_path / "r.csv"), "--methods", "gradcam", "--device",
                 "cpu", "--max-clips", "2"]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert "gradcam" in set(table["map"]) and table["clips"].max() <= 2 * 7
    assert main(["regions", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.csv")]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'nothing'}")
