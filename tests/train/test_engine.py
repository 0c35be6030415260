"""tdrag.train.engine: the loops read the device rarely, honour the memory format, keep labels on the host."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from tdrag.config import Config, replace
from tdrag.data.cache import open_cache
from tdrag.data.loader import make_loader
from tdrag.models.registry import build_model
from tdrag.train import engine, losses
from tdrag.train.schedule import build_optimizer, build_scheduler
from tests.run_fixtures import tiny_config


class _Recorder(torch.nn.Module):
    """Wraps a model; records each input's memory layout."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.layouts: list[str] = []

    def forward(self, x, return_inspection=False):
        self.layouts.append("channels_last_3d" if x.is_contiguous(memory_format=torch.channels_last_3d)
                            and not x.is_contiguous() else "contiguous")
        return self.model(x, return_inspection=return_inspection)


def _epoch(tiny_cache, monkeypatch, model=None, check_every=1000, **train):
    config = tiny_config(tiny_cache, "unused", **train)
    cache = open_cache(tiny_cache.cache)
    loader = make_loader(cache, cache.rows(1, "train"), batch_size=4, shuffle=False)
    model = model or build_model("tdrag", width=8, gru_hidden=16)
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, len(loader), config.train)
    return engine.train_one_epoch(model, loader, optimizer, scheduler, config, torch.device("cpu"), 1,
                                  check_every=check_every), len(loader)


def _from_engine() -> bool:
    """Whether the caller's caller is code in tdrag/train/engine.py (not the optimiser, not torch)."""
    frame = sys._getframe(2)
    return frame.f_code.co_filename == engine.__file__


def test_train_one_epoch_reads_the_device_once_per_check_not_per_step(tiny_cache, monkeypatch):
    reads = {"item": 0, "bool": 0, "tolist": 0}
    item, to_bool, tolist = torch.Tensor.item, torch.Tensor.__bool__, torch.Tensor.tolist

    def counting_item(self):
        reads["item"] += _from_engine()
        return item(self)

    def counting_bool(self):
        reads["bool"] += _from_engine()
        return to_bool(self)

    def counting_tolist(self):
        reads["tolist"] += _from_engine()
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    monkeypatch.setattr(torch.Tensor, "__bool__", counting_bool)
    monkeypatch.setattr(torch.Tensor, "tolist", counting_tolist)
    stats, steps = _epoch(tiny_cache, monkeypatch)
    assert steps >= 5
    # The engine's own host reads: the check at the last step, the one after the loop, and the
    # epoch's totals, whatever the number of steps.
    assert reads == {"item": 2, "bool": 0, "tolist": 1}, reads
    assert np.isfinite(stats["train_loss"]) and stats["clips"] == len(open_cache(tiny_cache.cache).rows(1, "train"))


def test_non_finite_loss_is_caught_at_the_next_check_naming_its_step(tiny_cache, monkeypatch):
    calls = {"n": 0}
    original = losses.training_loss

    def nan_at_step_3(out, labels, train):
        calls["n"] += 1
        loss = original(out, labels, train)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(engine, "training_loss", nan_at_step_3)
    with pytest.raises(engine.TrainingDiverged, match=r"epoch 1, step 3/"):
        _epoch(tiny_cache, monkeypatch, check_every=2)
    assert calls["n"] == 4  # stopped at the check after step 4, not at the end of the epoch


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_setting_is_honoured(tiny_cache, monkeypatch, channels_last):
    model = _Recorder(build_model("tdrag", width=8, gru_hidden=16))
    _epoch(tiny_cache, monkeypatch, model=model, channels_last=channels_last)
    expected = "channels_last_3d" if channels_last else "contiguous"
    assert set(model.layouts) == {expected}


def test_evaluate_moves_only_the_clips_to_the_device(tiny_cache):
    cache = open_cache(tiny_cache.cache)
    rows = cache.rows(1, "test")
    model = build_model("tdrag", width=8, gru_hidden=16)
    # Labels and rows as numpy arrays: evaluate must not call .to() on them.
    batches = [(torch.from_numpy(np.array(cache.frames[rows[i:i + 3]])), cache.labels[rows[i:i + 3]], rows[i:i + 3])
               for i in range(0, len(rows), 3)]
    model.train()
    preds = engine.evaluate(model, batches, "cpu", crop=28, video_ids=cache.video_ids)
    assert model.training  # the caller's mode is given back
    assert preds.rows.tolist() == sorted(rows.tolist())
    assert preds.labels.tolist() == cache.labels[np.sort(rows)].tolist()
    np.testing.assert_allclose(preds.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_step_loss_and_attention_penalty_need_the_inspection_pass():
    plain = replace(Config(), train={"attention_penalty": "none"})
    assert not losses.needs_inspection(plain.train)
    assert losses.needs_inspection(replace(plain, train={"step_loss": "mean"}).train)
    assert losses.needs_inspection(replace(plain, train={"attention_penalty": "l1",
                                                         "attention_penalty_weight": 0.1}).train)
    assert not losses.needs_inspection(replace(plain, train={"attention_penalty": "l1",
                                                             "attention_penalty_weight": 0.0}).train)
    assert losses.needs_inspection(Config().train)  # the default l1 penalty needs the masks


def test_an_epoch_reports_the_per_step_loss_and_penalty_it_trained_on(tiny_cache):
    """With the learning rate at 0 the weights never move, so the epoch's loss can be recomputed
    batch by batch, by hand: the cross-entropy of every GRU step weighted 1..S, plus 0.1 x the
    spatial entropy of each attention mask normalised by log(H W), averaged over stages."""
    import math

    import torch.nn.functional as F

    from tdrag.data.augment import train_transform

    config = tiny_config(tiny_cache, "unused", step_loss="linear", attention_penalty="entropy",
                         attention_penalty_weight=0.1, warmup_epochs=0)
    cache = open_cache(tiny_cache.cache)
    loader = make_loader(cache, cache.rows(1, "train"), batch_size=4, shuffle=False)
    torch.manual_seed(0)
    model = build_model("tdrag", width=8, gru_hidden=16, dropout=0.0)
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, len(loader), config.train)
    scheduler.base_lrs = [0.0] * len(scheduler.base_lrs)
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    stats = engine.train_one_epoch(model, loader, optimizer, scheduler, config, torch.device("cpu"), 1)

    d = config.data
    generator = engine.epoch_generator(config.train.seed, 1, 0)
    total, seen = 0.0, 0
    with torch.no_grad():
        for clips, labels, _ in loader:
            x = train_transform(clips, crop=d.crop, scale=tuple(d.crop_scale), flip=d.flip, generator=generator)
            out = model(x, return_inspection=True)
            steps = out.step_logits.shape[1]
            weights = [s / (steps * (steps + 1) / 2) for s in range(1, steps + 1)]
            loss = sum(w * F.cross_entropy(out.step_logits[:, s], labels) for s, w in enumerate(weights))
            entropies = []
            for masks in out.attention.values():
                flat = masks.flatten(3)
                p = flat / flat.sum(-1, keepdim=True)
                entropies.append((-(p * p.log()).sum(-1)).mean() / math.log(flat.shape[-1]))
            loss = loss + 0.1 * torch.stack(entropies).mean()
            total += loss.item() * len(labels)
            seen += len(labels)
    assert stats["clips"] == seen
    assert stats["train_loss"] == pytest.approx(total / seen, rel=1e-4)
    assert model.training  # the epoch leaves the model training
