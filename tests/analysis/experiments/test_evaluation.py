"""analysis.experiments.evaluation: one checkpoint, GRU on and off, against tdrag's own evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from analysis.experiments.evaluation import CheckpointEvaluation, evaluate_checkpoint, has_gru_branch


def test_figures_worked_out_by_hand():
    ev = CheckpointEvaluation(checkpoint=Path("x.pt"), rows=np.arange(6), labels=np.array([0, 0, 0, 1, 1, 2]),
                              predictions=np.array([0, 0, 1, 1, 1, 0]),
                              gru_off_predictions=np.array([0, 1, 1, 1, 1, 2]), num_classes=3)
    assert ev.war == pytest.approx(4 / 6)
    assert ev.uar == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert ev.confusion == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert ev.gru_off_war == pytest.approx(4 / 6)  # the same WAR ...
    assert ev.gru_changed == pytest.approx(2 / 6)  # ... with a third of the predictions changed
    assert ev.gru_off_confusion == [[1, 2, 0], [0, 2, 0], [0, 0, 1]]
    without = CheckpointEvaluation(Path("x.pt"), ev.rows, ev.labels, ev.predictions, None, 3)
    assert without.gru_off_war is None and without.gru_changed is None and without.gru_off_confusion is None


def test_the_gru_on_pass_is_tdrag_evals(tiny_run):
    """The predictions of each checkpoint are those the run's report holds (written by fit's evaluation)."""
    from tdrag.runs.layout import RunPaths
    from tdrag.runs.predictions import read_predictions

    paths = RunPaths(tiny_run)
    metrics = paths.read_metrics()
    for which, csv, entry in (("last", paths.predictions_last, "last"), ("best", paths.predictions, "best")):
        ev = evaluate_checkpoint(tiny_run, which)
        _, labels, predictions = read_predictions(csv)
        np.testing.assert_array_equal(ev.labels, labels)
        np.testing.assert_array_equal(ev.predictions, predictions)
        assert ev.war == pytest.approx(metrics[entry]["test"]["war"])
        assert ev.checkpoint.name == f"{which}.pt"


def test_the_gru_off_pass_by_hand(tiny_run):
    """GRU off: the model with its branch switched off, run on the centre-cropped test clips by hand."""
    from tdrag.data.augment import eval_transform
    from tdrag.models.tdrag import gru_branch_off
    from tdrag.models.registry import load_model
    from tdrag.train.data import load_run_data

    ev = evaluate_checkpoint(tiny_run, "last")
    model, config = load_model(tiny_run, which="last")
    data = load_run_data(config)
    x = eval_transform(torch.from_numpy(np.array(data.cache.frames[data.test_rows])), crop=config.data.crop)
    with torch.no_grad(), gru_branch_off(model):
        off = model(x).argmax(1).numpy()
    np.testing.assert_array_equal(ev.rows, data.test_rows)
    np.testing.assert_array_equal(ev.gru_off_predictions, off)
    assert ev.gru_changed == pytest.approx(float(np.mean(off != ev.predictions)))
    assert has_gru_branch(model) and model.head.gru_enabled  # the switch is given back


def test_another_cache_and_rows(tiny_run, tiny_cache):
    """A held-out draw's cache (here the same cache, opened as another one) and any rows of it."""
    ev = evaluate_checkpoint(tiny_run, "last", cache=tiny_cache.cache, rows=[0, 3, 4])
    np.testing.assert_array_equal(ev.rows, [0, 3, 4])
    assert len(ev.predictions) == 3


def test_a_model_without_a_gru_branch():
    from tdrag.config import Config, apply_overrides
    from tdrag.models.registry import build_model_from_config

    config = apply_overrides(Config(), ["model.name=tdrag_no_gru", "model.width=8"])
    assert not has_gru_branch(build_model_from_config(config.model))
