"""tdrag.train.losses: per-step supervision and attention penalties, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tdrag.config import Config, replace
from tdrag.models.inspection import ModelInspection
from tdrag.train.losses import attention_penalty, step_weights, training_loss


def _train(**changes):
    return replace(Config(), train=changes).train


def test_step_weights():
    assert step_weights(4, "last").tolist() == [0, 0, 0, 1]
    assert step_weights(4, "mean").tolist() == [0.25] * 4
    torch.testing.assert_close(step_weights(4, "linear"), torch.tensor([1.0, 2.0, 3.0, 4.0]) / 10)
    with pytest.raises(ValueError, match="unknown"):
        step_weights(3, "median")


def test_per_step_losses_average_the_steps_cross_entropies():
    torch.manual_seed(0)
    steps = torch.randn(5, 3, 7)
    labels = torch.randint(0, 7, (5,))
    out = ModelInspection(logits=steps[:, -1], step_logits=steps)
    per_step = torch.stack([F.cross_entropy(steps[:, s], labels) for s in range(3)])
    torch.testing.assert_close(training_loss(out, labels, _train(step_loss="last")), per_step[-1])
    torch.testing.assert_close(training_loss(out, labels, _train(step_loss="mean")), per_step.mean())
    torch.testing.assert_close(training_loss(out, labels, _train(step_loss="linear")),
                               (per_step * torch.tensor([1.0, 2.0, 3.0])).sum() / 6)
    # Plain logits (a model without a GRU): the ordinary cross-entropy whatever step_loss says.
    torch.testing.assert_close(training_loss(steps[:, -1], labels, _train(step_loss="mean")), per_step[-1])


def test_attention_penalties_hand_checked():
    flat = torch.full((1, 1, 2, 2, 2), 0.5)
    peaked = torch.zeros(1, 1, 2, 2, 2)
    peaked[..., 0, 0] = 1.0
    assert attention_penalty({"a": flat}, "l1").item() == pytest.approx(0.5)
    assert attention_penalty({"a": flat, "b": peaked}, "l1").item() == pytest.approx((0.5 + 0.25) / 2)
    # Entropy normalised by log(H W): a flat map is 1, a one-hot map 0.
    assert attention_penalty({"a": flat}, "entropy").item() == pytest.approx(1.0)
    assert attention_penalty({"a": peaked}, "entropy").item() == pytest.approx(0.0, abs=1e-6)
    half = torch.zeros(1, 1, 1, 2, 2)
    half[..., 0, :] = 1.0
    assert attention_penalty({"a": half}, "entropy").item() == pytest.approx(math.log(2) / math.log(4))


def test_penalty_is_added_with_its_weight():
    logits = torch.zeros(2, 7)
    labels = torch.tensor([0, 1])
    masks = {"layer4": torch.full((2, 1, 2, 3, 3), 0.25)}
    out = ModelInspection(logits=logits, attention=masks)
    plain = training_loss(out, labels, _train(attention_penalty="none"))
    penalised = training_loss(out, labels, _train(attention_penalty="l1", attention_penalty_weight=2.0))
    assert (penalised - plain).item() == pytest.approx(2.0 * 0.25)
