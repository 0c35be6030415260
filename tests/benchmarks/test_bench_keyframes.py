"""benchmarks/bench_keyframes.py: one clip's figures computed by hand, and a run over a few clips."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_keyframes.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_keyframes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_keyframes"] = module
    spec.loader.exec_module(module)
    return module


def test_score_of_a_hand_made_clip(bench):
    # 10 frames; frame 3 repeats frame 2 (held); the expression rises from frame 2 to its apex at 5.
    truth = {
        "intensity": np.array([0, 0, 0.2, 0.2, 0.6, 1.0, 0.8, 0.5, 0.2, 0.0]),
        "onset": 2, "apex": 5,
        "occluded": np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 0], dtype=bool),
        "distractor": np.zeros(10, dtype=bool),
        "motion": np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 5.0]),
        "held": np.array([0, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool),
        "step": np.array([0, 1, 2, 2, 3, 4, 5, 6, 7, 8]),
    }
    row = bench.score(np.array([0, 2, 3, 7]), truth)
    assert row["apex_hit"] == 0.0                    # 0.5 at frame 7 < 0.9 of the peak 1.0
    assert row["peak_kept"] == pytest.approx(0.5)
    assert row["onset_to_apex"] == 2.0              # frames 2 and 3
    assert row["largest_gap"] == pytest.approx(0.3)  # frames 4-6 (or 8-9 is 2)
    assert row["repeats"] == pytest.approx(0.25)     # frame 3 shows frame 2 again
    # occluded: keyframes 0, 2, 2 (3 is held), 7 -> 1 of 4 on an occluded frame; 2 of 9 distinct frames are
    assert row["occluded"] == (pytest.approx(0.25), pytest.approx(2 / 9))
    # the top 10 % of distinct frames by pose motion is frame 9 alone, which no keyframe shows
    assert row["pose_motion"][0] == 0.0


def test_every_method_over_a_few_clips(bench):
    table = bench.evaluate(["redundancy", "uniform"], clips=6, frames=8)
    for method, row in table.items():
        assert row["clips"] >= 1
        assert 0.0 <= row["largest_gap"] < 1.0 and 0.0 <= row["apex_hit"] <= 1.0
        assert row["repeats"] >= 0.0
    assert table["redundancy"]["repeats"] == 0.0  # held frames are collapsed before choosing
