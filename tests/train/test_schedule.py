"""tdrag.train.schedule: optimiser groups and the per-iteration warm-up + cosine / step schedule."""

from __future__ import annotations

import math

import pytest
import torch

from tdrag.config import TrainConfig
from tdrag.train.schedule import WarmupSchedule, build_optimizer, build_scheduler


def test_warmup_then_cosine_to_zero():
    schedule = WarmupSchedule(10, TrainConfig(epochs=5, warmup_epochs=1, schedule="cosine"))
    assert [schedule(s) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert schedule(10) == pytest.approx(1.0)
    # Half-way through the cosine part (40 steps after warm-up): 0.5.
    assert schedule(30) == pytest.approx(0.5)
    assert schedule(50) == pytest.approx(0.0, abs=1e-12)
    values = [schedule(s) for s in range(10, 50)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_step_schedule_counts_epochs_from_the_start():
    schedule = WarmupSchedule(4, TrainConfig(epochs=100, warmup_epochs=0, schedule="step", step_epochs=40, step_gamma=0.1))
    assert schedule(0) == 1.0
    assert schedule(4 * 40 - 1) == 1.0
    assert schedule(4 * 40) == pytest.approx(0.1)
    assert schedule(4 * 80) == pytest.approx(0.01)


def test_unknown_schedule_and_optimizer_are_named():
    with pytest.raises(ValueError, match="train.schedule: unknown schedule 'linear'"):
        WarmupSchedule(1, TrainConfig(schedule="linear"))
    with pytest.raises(ValueError, match="train.optimizer: unknown optimizer 'adam'"):
        build_optimizer(torch.nn.Linear(2, 2), TrainConfig(optimizer="adam"))


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_optimizer_exempts_biases_and_norms_from_weight_decay(name, cls):
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4))
    optimizer = build_optimizer(model, TrainConfig(optimizer=name, weight_decay=0.05))
    assert isinstance(optimizer, cls)
    decayed, exempt = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and exempt["weight_decay"] == 0.0
    assert [p.ndim for p in decayed["params"]] == [5]
    assert len(exempt["params"]) == 3  # conv bias, bn weight, bn bias


def test_scheduler_state_round_trip_gives_the_same_curve():
    config = TrainConfig(epochs=3, warmup_epochs=1, lr=0.1)
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, 5, config)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    state = scheduler.state_dict()
    expected = []
    for _ in range(5):
        optimizer.step()
        scheduler.step()
        expected.append(optimizer.param_groups[0]["lr"])
    optimizer2 = build_optimizer(model, config)
    scheduler2 = build_scheduler(optimizer2, 5, config)
    scheduler2.load_state_dict(state)
    for group in optimizer2.param_groups:
        group["lr"] = scheduler2.get_last_lr()[0]
    got = []
    for _ in range(5):
        optimizer2.step()
        scheduler2.step()
        got.append(optimizer2.param_groups[0]["lr"])
    assert got == pytest.approx(expected)
    assert not math.isnan(got[-1])
