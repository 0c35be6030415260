"""Single-clip figures and the overlay scaling; live training curves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.attribution.views import overlay_scale, plot_attribution_strip, plot_frame_importance
from analysis.internals.clip_views import plot_clip_trajectory, plot_step_probabilities
from analysis.notebook.live import LiveCurves
from analysis.plotting import figure_png, message_figure
from tdrag.data.labels import DFEW_CLASSES

PNG = b"\x89PNG\r\n\x1a\n"


def test_overlay_scale():
    maps = torch.tensor([[[-4.0, 2.0], [0.0, 1.0]]])
    scaled = overlay_scale(maps)
    assert torch.allclose(scaled, torch.tensor([[[1.0, 0.5], [0.0, 0.25]]]))
    assert torch.equal(overlay_scale(torch.zeros(2, 3, 3)), torch.zeros(2, 3, 3))


def test_step_probabilities_figure():
    probs = torch.softmax(torch.randn(4, 7), dim=1)
    fig = plot_step_probabilities(probs, label=2, class_names=DFEW_CLASSES, title="clip")
    ax = fig.axes[0]
    assert len(ax.lines) == 7
    true_line = [line for line in ax.lines if line.get_label() == "Neutral (true)"]
    assert len(true_line) == 1 and true_line[0].get_linewidth() > ax.lines[0].get_linewidth()
    np.testing.assert_allclose(true_line[0].get_ydata(), probs[:, 2].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="step_probs"):
        plot_step_probabilities(torch.ones(4, 5), class_names=DFEW_CLASSES)


def test_clip_trajectory_figure():
    traj = np.cumsum(np.ones((3, 2)), axis=0)
    means = np.full((7, 3, 2), np.nan)
    means[1] = traj + 1
    means[4] = traj - 1
    fig = plot_clip_trajectory(traj, means, label=1, class_names=DFEW_CLASSES)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["Surprise mean", "Sad mean (true class)", "this clip"]  # NaN classes skipped
    np.testing.assert_allclose(fig.axes[0].lines[-1].get_xydata(), traj)


def test_attribution_strip_and_frame_importance():
    clip = torch.randn(3, 4, 16, 16)
    fig = plot_attribution_strip(clip, {"saliency": torch.randn(4, 16, 16), "ig": torch.randn(4, 16, 16)},
                                 title="t", frames=[0, 3])
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and "attribution" in colorbars[0].get_ylabel()
    assert len(fig.axes) == 3 + 1  # input + 2 maps, a row each, + colour bar
    fig = plot_frame_importance(torch.tensor([[1.0, -0.5, 0.0], [0.2, 0.3, 0.4]]), ["a", "b"])
    assert len(fig.axes[0].patches) == 6
    with pytest.raises(ValueError, match="importance"):
        plot_frame_importance(torch.ones(3))
    assert figure_png(message_figure("no GRU")).startswith(PNG)


def test_live_curves_collects_rows_and_redraws():
    curves = LiveCurves(show=False)
    curves({"epoch": 1, "train_loss": 2.0, "test_war": 0.2})
    first = curves.png
    curves({"epoch": 2, "train_loss": 1.5, "test_war": 0.4})
    assert first.startswith(PNG) and curves.png != first
    assert curves.frame["train_loss"].tolist() == [2.0, 1.5]
    quiet = LiveCurves(show=False)
    quiet({"epoch": 1, "note": "x"})  # nothing plottable: no figure, no error
    assert quiet.png is None and len(quiet.frame) == 1
