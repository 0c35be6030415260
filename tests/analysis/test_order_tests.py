"""Order tests against hand-made models whose answers are known: one that reads only the last
keyframe, one that pools an unordered bag, one that reads order; and a real TDRAG's GRU states."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, recall_score
from torch import nn

from analysis.internals.order_tests import (
    CHOSEN,
    REVERSED,
    STATIC,
    gru_states,
    most_expressive_keyframe,
    order_tests,
    reorder,
    shuffle_orders,
)

T, S = 6, 8
NAMES = ("rising", "falling")


def ramp_clips(count: int) -> tuple[torch.Tensor, np.ndarray]:
    """Class 0 brightens over the clip, class 1 darkens: the same frames in opposite order, so an
    unordered bag cannot tell them apart."""
    levels = np.linspace(40, 200, T)
    clips, labels = [], []
    for i in range(count):
        label = i % 2
        seq = levels if label == 0 else levels[::-1]
        clips.append(np.broadcast_to(seq[:, None, None, None], (T, S, S, 3)).astype(np.uint8))
        labels.append(label)
    return torch.as_tensor(np.stack(clips)), np.asarray(labels)


class Brightness(nn.Module):
    """Logits from the mean brightness of some keyframes: (B, 3, T, H, W) -> (B, 2)."""

    def __init__(self, read) -> None:
        super().__init__()
        self.read = read

    def forward(self, x):
        score = self.read(x.mean(dim=(1, 3, 4)))  # (B,) from (B, T)
        return torch.stack([score, -score], dim=1)


LAST = Brightness(lambda b: b[:, -1])  # bright last keyframe -> "rising"
BAG = Brightness(lambda b: b.sort(dim=1).values @ torch.linspace(-1, 2, b.shape[1]))  # a function of the bag alone
ORDER = Brightness(lambda b: b[:, -1] - b[:, 0])  # later brighter than earlier -> "rising"


def run(model, clips, labels, **kw):
    batches = [(clips[i : i + 4], labels[i : i + 4]) for i in range(0, len(labels), 4)]
    return order_tests(model, batches, crop=S, class_names=NAMES, **kw)


def war(result, condition, gru="none"):
    row = result.summary[(result.summary.condition == condition) & (result.summary.gru == gru)]
    return float(row.war.iloc[0])


def test_order_reader_loses_everything_reversed_and_keeps_it_in_order():
    clips, labels = ramp_clips(10)
    result = run(ORDER, clips, labels)
    assert war(result, CHOSEN) == 1.0 and war(result, REVERSED) == 0.0
    # Static clips have no order: first == last, so the score is 0 and both classes go to class 0.
    assert war(result, STATIC) == 0.5
    for condition in result.summary.condition:
        pred = result.predictions[(condition, "none")]
        assert war(result, condition) == pytest.approx(accuracy_score(labels, pred))


def test_bag_reader_scores_the_same_in_every_order():
    clips, labels = ramp_clips(10)
    result = run(BAG, clips, labels)
    chosen = result.predictions[(CHOSEN, "none")]
    for (condition, _), pred in result.predictions.items():
        if condition != STATIC:
            assert np.array_equal(pred, chosen), condition
    assert war(result, CHOSEN) == 0.5  # the bag is the same for both classes


def test_last_keyframe_reader_follows_the_last_keyframe():
    clips, labels = ramp_clips(10)
    result = run(LAST, clips, labels, shuffles=4, seed=1)
    assert war(result, CHOSEN) == 1.0 and war(result, REVERSED) == 0.0
    orders = shuffle_orders(T, 4, seed=1)
    assert len(orders) == 4
    for name, order in orders.items():
        # The shuffled clip's last keyframe is keyframe order[-1]: past the middle it still "rises".
        expected = accuracy_score(labels, np.where(order[-1] >= T / 2, labels, 1 - labels))
        assert war(result, name) == pytest.approx(expected)
    # Static: the most expressive keyframe is the one furthest from the first in brightness, the
    # last one for both classes, so the static clip repeats the last keyframe: still correct.
    assert war(result, STATIC) == 1.0


def test_per_class_recall_matches_scikit_learn():
    clips, labels = ramp_clips(9)
    result = run(LAST, clips, labels)
    for (condition, gru), pred in result.predictions.items():
        rows = result.per_class[(result.per_class.condition == condition) & (result.per_class.gru == gru)]
        expected = recall_score(labels, pred, labels=[0, 1], average=None, zero_division=0)
        assert rows.recall.tolist() == pytest.approx(expected.tolist())
        assert rows.clips.tolist() == [5, 4]


def test_shuffles_are_fixed_distinct_and_never_identity_or_reversal():
    orders = shuffle_orders(8, 5, seed=0)
    assert list(orders) == [f"shuffled {k}" for k in range(1, 6)]
    seen = {tuple(o) for o in orders.values()}
    assert len(seen) == 5 and tuple(range(8)) not in seen and tuple(range(7, -1, -1)) not in seen
    assert all(np.array_equal(a, b) for a, b in zip(orders.values(), shuffle_orders(8, 5, seed=0).values()))
    assert len(shuffle_orders(3, 10)) == 4 and shuffle_orders(2, 3) == {}


def test_static_repeats_the_most_expressive_keyframe():
    clips = torch.zeros(2, 4, 2, 2, 3, dtype=torch.uint8)
    clips[0, 2] = 90
    clips[1, 1] = 30
    clips[1, 3] = 60
    assert most_expressive_keyframe(clips).tolist() == [2, 3]
    static = reorder(clips, STATIC, {})
    assert torch.equal(static[0], clips[0, [2, 2, 2, 2]]) and torch.equal(static[1], clips[1, [3, 3, 3, 3]])


def test_tdrag_gru_on_and_off(tiny_run):
    from analysis import open_run
    from analysis.internals.order_tests import run_order_tests
    from tdrag.models.tdrag import gru_branch_off

    opened = open_run(tiny_run, progress=False)
    assert gru_states(opened.model) == ("on", "off")
    result = run_order_tests(opened, shuffles=2)
    assert set(result.summary.gru) == {"on", "off"} and len(result.summary) == 2 * 5
    assert np.array_equal(result.predictions[(CHOSEN, "on")], opened.predictions)
    with gru_branch_off(opened.model):
        x = opened.inputs(np.arange(len(opened)))
        with torch.no_grad():
            off = opened.model.eval()(x).argmax(1).numpy()
    assert np.array_equal(result.predictions[(CHOSEN, "off")], off)
    assert gru_states(nn.Linear(2, 2)) == ("none",)
