"""analysis.attribution.completeness: Integrated Gradients' completeness gap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.attribution.attribute import attribute
from analysis.attribution.completeness import completeness_gap
from tests.analysis.attribution_models import RegionModel, region_clips

@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random clips whatever ran before it."""
    torch.manual_seed(0)


def test_completeness_gap_formula_and_precomputed_maps():
    model, x = RegionModel(), region_clips(2)
    maps = attribute(model, x, 1, "integrated_gradients", n_steps=16)
    table = completeness_gap(model, x, 1, maps=maps)
    with torch.no_grad():
        diff = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    expected = (maps.flatten(1).sum(1) - diff).abs() / diff.abs()
    assert np.allclose(table["gap"].to_numpy(), expected.numpy(), rtol=1e-4, atol=1e-7)
    assert np.allclose(table["output_difference"].to_numpy(), diff.numpy(), rtol=1e-5)
