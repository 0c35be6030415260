"""analysis.experiments.summary: mean ± std and paired differences, by hand and on an old results file."""

from __future__ import annotations

import json
import math

import pytest

from analysis.experiments.results import RunResult, StageAgreement, read_results
from analysis.experiments.summary import MeanStd, PairedDifference, paired_summary, table_json
from tests.analysis.experiments.test_results import OLD_ABLATION, run


def test_mean_and_sample_std():
    assert MeanStd.of([0.5, 0.7]) == MeanStd(pytest.approx(0.6), pytest.approx(0.1414213562, abs=1e-9))
    assert MeanStd.of([0.3]) == MeanStd(0.3, 0.0)  # one seed: no spread, not NaN
    with pytest.raises(ValueError, match="no values"):
        MeanStd.of([])


def test_differences_are_paired_over_the_shared_seeds():
    results = [run(variant="r3d18", seed=0, test_war=0.50), run(variant="r3d18", seed=1, test_war=0.70),
               run(variant="tdrag", seed=0, test_war=0.60), run(variant="tdrag", seed=1, test_war=0.90),
               run(variant="tdrag", seed=2, test_war=0.10)]  # r3d18 has no seed 2: left out of the pairs
    table = paired_summary(results)
    assert list(table) == ["r3d18", "tdrag"] and table["tdrag"].seeds == [0, 1, 2]
    # Per seed: 0.60 - 0.50 = 0.10 and 0.90 - 0.70 = 0.20 -> 0.15 ± 0.0707 over seeds (0, 1).
    diff = table["tdrag"].difference("test_war", "r3d18")
    assert diff == PairedDifference(pytest.approx(0.15), pytest.approx(0.0707107, abs=1e-6), (0, 1))
    # The other way round against the full model: -0.15 with the same spread.
    assert table["r3d18"].difference("test_war", "tdrag").mean == pytest.approx(-0.15)
    assert table["tdrag"].difference("test_war", "tdrag") is None  # never against itself
    assert table["tdrag"].figure("test_war").mean == pytest.approx((0.6 + 0.9 + 0.1) / 3)
    entry = table_json(table)["tdrag"]
    assert entry["test_war_minus_r3d18"] == [pytest.approx(0.15), pytest.approx(0.0707107, abs=1e-6), 2]
    assert entry["seeds"] == [0, 1, 2] and "test_war_minus_tdrag" not in entry


def test_a_figure_some_seed_lacks_is_left_out():
    results = [run(seed=0, gru_off_test_war=0.5, val_war=0.4), run(seed=1, gru_off_test_war=None, val_war=0.6)]
    row = paired_summary(results)["tdrag"]
    assert row.figure("gru_off_test_war") is None and row.figure("val_war") == MeanStd(pytest.approx(0.5),
                                                                                       pytest.approx(0.1414213, abs=1e-6))
    with pytest.raises(ValueError, match="two runs of tdrag with seed 1"):
        paired_summary([*results, run(seed=1, run_dir="elsewhere")])


def test_attention_is_summarised_over_the_scored_seeds():
    a = {"layer3": StageAgreement(0.2, 0.6, 0.5, 0.4, 0.1), "centre_prior": StageAgreement(0.3, 0.8, 0.7, 0.5, 0.1)}
    b = {"layer3": StageAgreement(0.4, 0.8, 0.7, 0.6, 0.1), "centre_prior": StageAgreement(0.3, 0.8, 0.7, 0.5, 0.1)}
    row = paired_summary([run(seed=0, attention=a), run(seed=1, attention=b), run(seed=2)])["tdrag"]
    assert list(row.attention) == ["layer3", "centre_prior"]
    assert row.attention["layer3"]["auroc"] == MeanStd(pytest.approx(0.7), pytest.approx(0.1414213, abs=1e-6))
    assert row.attention["layer3"]["ratio"].mean == pytest.approx(3.0)  # (2 + 4) / 2
    assert row.attention["centre_prior"]["auroc"] == MeanStd(pytest.approx(0.8), 0.0)


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return set(a) == set(b) and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


def test_the_table_of_an_old_results_file_is_reproduced():
    """The summary bench_ablation.py wrote with its own hand-rolled code, recomputed from the runs."""
    stored = json.loads(OLD_ABLATION.read_text())["table"]
    assert _close(table_json(paired_summary(read_results(OLD_ABLATION, RunResult))), stored)
    assert stored["tdrag"]["test_war_minus_r3d18"][2] == 3  # three paired seeds
