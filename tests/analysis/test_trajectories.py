"""analysis.internals.trajectories: PCA on constructed data, class means, decision steps, accuracy per step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from analysis.internals import trajectories as tr
from tdrag.data.labels import DFEW_CLASSES


def test_pca_recovers_the_dominant_axis_and_variance_share():
    rng = np.random.default_rng(0)
    # States spread along a known direction in 5-D, small isotropic noise elsewhere.
    direction = np.array([1.0, 2.0, 0.0, -2.0, 0.0]) / 3.0
    coords = rng.normal(0, 5.0, size=400)
    states = coords[:, None] * direction + rng.normal(0, 0.1, size=(400, 5)) + 3.0
    pca = tr.fit_pca(states.reshape(40, 10, 5), k=2)  # (N, T, D) pooled over all steps
    assert abs(abs(pca.components[0] @ direction) - 1.0) < 1e-3
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(2), atol=1e-10)
    assert pca.explained_variance_ratio[0] > 0.99
    assert pca.explained_variance_ratio.sum() <= 1.0 + 1e-12
    projected = pca.transform(states)
    # The first coordinate is the position along the direction, up to sign and the mean offset.
    corr = np.corrcoef(projected[:, 0], coords)[0, 1]
    assert abs(corr) > 0.999
    # Transform keeps leading dims and accepts tensors.
    assert pca.transform(torch.as_tensor(states.reshape(40, 10, 5))).shape == (40, 10, 2)


def test_pca_sign_is_deterministic_and_k_checked():
    x = np.random.default_rng(1).normal(size=(50, 4))
    a, b = tr.fit_pca(x, 3), tr.fit_pca(x.copy(), 3)
    np.testing.assert_array_equal(a.components, b.components)
    with pytest.raises(ValueError, match="k=5"):
        tr.fit_pca(x, 5)
    with pytest.raises(ValueError, match="at least 2"):
        tr.fit_pca(x[:1], 1)


def test_class_mean_trajectories():
    traj = np.array([[[0.0, 0.0], [1.0, 1.0]], [[2.0, 0.0], [3.0, 1.0]], [[5.0, 5.0], [5.0, 5.0]]])
    means = tr.class_mean_trajectories(traj, [0, 0, 2], num_classes=3)
    np.testing.assert_allclose(means[0], [[1.0, 0.0], [2.0, 1.0]])
    assert np.isnan(means[1]).all()
    np.testing.assert_allclose(means[2], traj[2])
    with pytest.raises(ValueError, match="labels"):
        tr.class_mean_trajectories(traj, [0, 1], num_classes=3)


def test_decision_steps_on_hand_made_predictions():
    preds = np.array(
        [
            [2, 2, 2, 2],  # never changes -> 0
            [0, 1, 1, 1],  # final from step 1
            [1, 1, 0, 1],  # flips back at the last step -> 3
            [3, 3, 1, 1],  # final from step 2
            [1, 0, 1, 1],  # an earlier excursion counts: final from step 2
        ]
    )
    np.testing.assert_array_equal(tr.decision_steps(preds), [0, 1, 3, 2, 2])
    # The same from logits: one-hot logits give those argmaxes.
    logits = np.eye(4)[preds] * 5.0
    np.testing.assert_array_equal(tr.decision_steps(torch.as_tensor(logits)), [0, 1, 3, 2, 2])
    np.testing.assert_array_equal(tr.step_predictions(logits), preds)


def test_accuracy_per_step_war_and_uar():
    preds = np.array([[0, 0, 1], [1, 0, 0], [1, 1, 1], [0, 1, 1]])
    labels = np.array([0, 0, 0, 1])
    table = tr.accuracy_per_step(preds, labels, num_classes=2)
    assert table["step"].tolist() == [1, 2, 3]
    # step1 correct: [T, F, F, F] ; step2: [T, T, F, T]; step3: [F, T, F, T]
    np.testing.assert_allclose(table["war"], [0.25, 0.75, 0.5])
    # UAR: class 0 recall [1/3, 2/3, 1/3], class 1 recall [0, 1, 1].
    np.testing.assert_allclose(table["uar"], [(1 / 3) / 2, (2 / 3 + 1) / 2, (1 / 3 + 1) / 2])


def test_decision_step_table_per_class():
    preds = np.array([[0, 0], [1, 0], [1, 1]])
    table = tr.decision_step_table(preds, [0, 0, 1], class_names=["a", "b", "c"])
    assert list(table.index) == ["a", "b", "all"]
    assert table.loc["a", "decision_step_mean"] == pytest.approx(0.5)
    assert table.loc["a", "decided_at_start"] == pytest.approx(0.5)
    assert table.loc["b", "final_accuracy"] == pytest.approx(1.0)
    assert table.loc["all", "clips"] == 3


def test_figures_are_built_with_labels():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(21, 6, 8))
    labels = np.arange(21) % 7
    pca = tr.fit_pca(hidden, 2)
    fig = tr.plot_trajectories(pca.transform(hidden), labels, DFEW_CLASSES, pca=pca)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("PC1 (") and ax.get_ylabel().startswith("PC2 (")
    assert len(ax.get_legend().get_texts()) == 7
    step_logits = rng.normal(size=(21, 6, 7))
    fig = tr.plot_accuracy_per_step(tr.accuracy_per_step(step_logits, labels, num_classes=7))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["WAR", "UAR"]
    fig = tr.plot_decision_steps(step_logits, labels, DFEW_CLASSES)
    assert fig.axes[0].get_xlabel().startswith("decision step")


def test_bad_inputs_are_refused_with_the_shape():
    with pytest.raises(ValueError, match=r"\(N, T, >=2\)"):
        tr.plot_trajectories(np.zeros((3, 4, 1)), [0, 1, 2], ["a", "b", "c"])
    with pytest.raises(ValueError, match="no clips"):
        tr.accuracy_per_step(np.zeros((0, 4), dtype=int), [], num_classes=3)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        tr.accuracy_per_step(np.zeros((2, 4), dtype=int), [0, 2], num_classes=2)
    with pytest.raises(ValueError, match=r"\(N, T, C\)"):
        tr.step_predictions(np.zeros((3, 4)))
