"""analysis.attribution.randomisation: Spearman with ties, cascading model-parameter randomisation."""

from __future__ import annotations

import math

import pytest
import torch

from analysis.attribution.randomisation import rank_average, randomisation_check, spearman
from tests.analysis.attribution_models import H, T, W, RegionModel, region_clips, tiny_conv_gru

@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random clips whatever ran before it."""
    torch.manual_seed(0)


def test_spearman_with_ties_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (200,), generator=gen).float()
    b = a + torch.randint(0, 3, (200,), generator=gen).float()
    assert math.isclose(spearman(a, b), stats.spearmanr(a.numpy(), b.numpy()).statistic, rel_tol=1e-9)
    assert rank_average(torch.tensor([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]
    assert math.isnan(spearman(torch.ones(5), torch.arange(5.0)))


def test_randomisation_check_on_a_model_whose_maps_must_change():
    model = tiny_conv_gru()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, T, H, W)
    table = randomisation_check(model, x, 1, "saliency")
    assert list(table.columns) == ["step", "layer", "clip", "spearman", "spearman_abs"]
    layers = list(dict.fromkeys(table["layer"]))
    assert layers == ["fc", "gru", "layer4", "layer3", "layer2", "layer1", "stem"]
    assert len(table) == 7 * 2
    # Fully randomised, the maps have nothing left in common with the trained ones.
    last = table[table["step"] == 7]
    assert (last["spearman"].abs() < 0.5).all(), last
    first = table[table["step"] == 1]
    assert (last["spearman"].to_numpy() < first["spearman"].to_numpy()).all()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"original model changed: {k}"


def test_randomisation_check_sees_no_change_when_nothing_used_changes():
    model, x = RegionModel(), region_clips(2)
    table = randomisation_check(model, x, 1, "saliency", layers=["unused"])
    assert (table["spearman"] > 0.999999).all()
    moved = randomisation_check(model, x, 1, "saliency", layers=["fc", "layer1"])
    # A new fc only rescales this model's channels (layer1's are identical): same ranks. A new
    # layer1 moves the gradient inside the region: the ranks change.
    assert (moved[moved["step"] == 2]["spearman"] < 0.999).all()
    with pytest.raises(ValueError, match="nope"):
        randomisation_check(model, x, 1, "saliency", layers=["nope"])
