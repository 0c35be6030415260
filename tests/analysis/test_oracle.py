"""The oracle on hand-made curves whose answers are known (an order-only pair, an apex-only pair),
and bench_oracle end to end on a tiny set."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.internals.oracle import CurveSet, default_pairs, features, oracle_markdown, oracle_table


def order_only_set(count: int = 80, length: int = 20, seed: int = 0) -> CurveSet:
    """Class 0 moves part A then part B, class 1 part B then part A, with random timing and
    strength: every frame is as likely in one class as in the other, only the order differs."""
    rng = np.random.default_rng(seed)
    curves, labels = [], []
    t = np.arange(length)
    for i in range(count):
        label = i % 2
        first, second = sorted(rng.choice(np.arange(2, length - 2), 2, replace=False))
        bump = lambda centre: np.exp(-0.5 * ((t - centre) / 1.2) ** 2) * rng.uniform(0.5, 1.0)  # noqa: E731
        a, b = (bump(first), bump(second)) if label == 0 else (bump(second), bump(first))
        curves.append(np.stack([a, b], axis=1))
        labels.append(label)
    return CurveSet(curves, np.asarray(labels), [f"{i:05d}" for i in range(count)], ("AB", "BA"))


def test_bag_is_invariant_to_order_and_ordered_is_not():
    rng = np.random.default_rng(1)
    curves = [rng.random((6, 3))]
    keys = [np.array([0, 1, 2, 3, 4, 5])]
    shuffled = [np.array([3, 1, 5, 0, 2, 4])]
    assert np.array_equal(features(curves, "bag", keys), features(curves, "bag", shuffled))
    assert not np.array_equal(features(curves, "ordered", keys), features(curves, "ordered", shuffled))
    assert features(curves, "apex").tolist() == [curves[0].max(axis=0).tolist()]
    assert features(curves, "all frames").shape == (1, 32 * 3)
    with pytest.raises(ValueError, match="needs the keyframes"):
        features(curves, "ordered")


def test_order_only_pair_needs_order():
    data = order_only_set()
    keyframes = {("all", 20): [np.arange(20)] * len(data.curves)}
    table = oracle_table(data, keyframes, [("AB", "BA")], folds=4)
    pair = table[table.task == "AB vs BA"].set_index("representation").accuracy
    assert pair["ordered"] >= 0.9
    assert pair["bag"] <= 0.7  # near chance: the bag holds the same frames for both classes
    assert pair["apex"] <= 0.7
    assert "AB vs BA" in oracle_markdown(table)


def test_twins_of_a_preset():
    from tdrag.data.labels import DFEW_CLASSES

    assert default_pairs(DFEW_CLASSES, shared_apex=True) == [("Angry", "Disgust"), ("Surprise", "Fear")]
    assert default_pairs(DFEW_CLASSES, shared_apex=False) == []


def test_bench_oracle_end_to_end(tmp_path):
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_oracle

    md = tmp_path / "oracle.md"
    assert bench_oracle.main(["--out", str(tmp_path / "o"), "--preset", "medium", "--clips", "42", "--size", "32",
                              "--frames", "4", "--rules", "uniform", "--folds", "2", "--workers", "1",
                              "--markdown", str(md)]) == 0
    record = json.loads((tmp_path / "o" / "oracle.json").read_text())
    tasks = {row["task"] for row in record["rows"]}
    assert tasks == {"Angry vs Disgust", "Surprise vs Fear", "all classes"}
    assert {row["keyframes"] for row in record["rows"]} == {"-", "uniform 4"}
    assert "| all classes | bag |" in md.read_text()
