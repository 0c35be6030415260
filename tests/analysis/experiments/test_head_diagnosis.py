"""analysis.experiments.head_diagnosis: the hand-run GRU is nn.GRU; one tiny epoch of the probe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from analysis.experiments.head_diagnosis import _gates, diagnose, diagnosis_markdown, format_row


def test_the_hand_run_recurrence_is_nn_grus():
    torch.manual_seed(0)
    gru = nn.GRU(4, 3, batch_first=True)
    sequence = torch.randn(2, 5, 4)
    z, r, n, states = _gates(gru, sequence)
    with torch.no_grad():
        torch.testing.assert_close(states, gru(sequence)[0], atol=1e-6, rtol=1e-5)
    assert z.shape == r.shape == n.shape == (2, 5, 3)
    assert ((z > 0) & (z < 1)).all() and (n.abs() < 1).all()


@pytest.fixture(scope="module")
def diagnosed(tiny_cache, tmp_path_factory):
    from tests.run_fixtures import tiny_config

    config = tiny_config(tiny_cache, tmp_path_factory.mktemp("diagnosis") / "run", epochs=1)
    return list(diagnose(config, epochs=1, probe_size=4))


def test_one_epoch_is_probed_before_and_after(diagnosed):
    before, after = diagnosed
    assert (before.epoch, after.epoch) == (0, 1) and before.train == {} and "train_loss" in after.train
    # The parts of TDRAG, each with a finite gradient and its ratio to the parameters' norm.
    assert {"stem", "layer4", "attention", "gru_input", "gru_recurrent", "head_fc"} <= set(after.gradients)
    for part in after.gradients.values():
        assert part["grad"] >= 0 and part["ratio"] == pytest.approx(part["grad"] / part["param"])
    for key in ("z_saturated", "r_saturated", "n_saturated", "state_saturated"):
        assert 0 <= after.gru[key] <= 1
    assert after.to_json()["train_loss"] == after.train["train_loss"] and "gradients" in after.to_json()


def test_the_tables(diagnosed):
    lines = diagnosis_markdown([("tdrag", diagnosed)]).splitlines()
    assert len(lines) == 2 + len(diagnosed)
    assert lines[2].startswith("| tdrag | 0 | – | – | ") and lines[3].startswith("| tdrag | 1 | ")
    assert format_row("tdrag", diagnosed[1]).startswith("tdrag epoch 1 loss ")
