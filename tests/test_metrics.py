"""tdrag.metrics against hand-computed cases and against scikit-learn on random predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from tdrag import metrics

# labels/predictions worked out by hand below (3 classes).
LABELS = [0, 0, 0, 1, 1, 2]
PREDS = [0, 0, 1, 1, 2, 2]


def test_hand_computed_case():
    counts = metrics.confusion_matrix(LABELS, PREDS, 3)
    assert counts.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics.war(LABELS, PREDS, 3) == pytest.approx(4 / 6)
    # Recalls 2/3, 1/2, 1/1.
    assert metrics.uar(LABELS, PREDS, 3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    figures = metrics.per_class(LABELS, PREDS, 3)
    np.testing.assert_allclose(figures["precision"], [1.0, 0.5, 0.5])
    np.testing.assert_allclose(figures["recall"], [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(figures["f1"], [0.8, 0.5, 2 / 3])
    assert figures["support"].tolist() == [3, 2, 1]
    normalized = metrics.normalize_rows(counts)
    np.testing.assert_allclose(normalized[0], [2 / 3, 1 / 3, 0])
    np.testing.assert_allclose(normalized.sum(axis=1), 1.0)


def test_uar_differs_from_war_on_imbalanced_set():
    # 9 of class 0 all right, 1 of class 1 wrong: WAR 0.9 but UAR 0.5.
    labels = [0] * 9 + [1]
    preds = [0] * 10
    assert metrics.war(labels, preds, 2) == pytest.approx(0.9)
    assert metrics.uar(labels, preds, 2) == pytest.approx(0.5)


def test_absent_class_left_out_of_uar_and_figures_as_scikit_learn():
    labels = [0, 0, 1]
    preds = [0, 1, 1]
    figures = metrics.per_class(labels, preds, 3)
    assert figures["recall"][2] == 0.0 and figures["precision"][2] == 0.0 and figures["support"][2] == 0
    assert metrics.uar(labels, preds, 3) == pytest.approx((0.5 + 1.0) / 2)
    report = metrics.classification_report(labels, preds, ["a", "b", "c"])
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Class c occurs in neither labels nor predictions: left out of the macro average.
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))


def test_macro_f1_counts_a_present_but_never_predicted_class_as_zero():
    # Class 2 present twice, never predicted: its F1 of 0 counts (skipping it would give 0.8, not 0.533).
    labels = [0, 0, 1, 1, 2, 2]
    preds = [0, 0, 1, 1, 0, 1]
    report = metrics.classification_report(labels, preds, ["a", "b", "c"])
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))
    assert report["macro_f1"] == pytest.approx((0.8 + 0.8 + 0.0) / 3)
    assert report["per_class"]["c"]["precision"] == 0.0 and report["per_class"]["c"]["f1"] == 0.0


@pytest.mark.parametrize(
    "labels, preds",
    [
        ([0, 1, 2, 3, 4, 5, 6] * 3, [2] * 21),  # collapsed: one class predicted for everything
        ([0, 0, 1, 1, 3, 3], [0, 1, 1, 1, 6, 3]),  # classes 2, 4, 5 absent; 6 predicted but absent
        ([5, 5, 5], [5, 5, 5]),  # a single class, all right
        ([0, 1, 1, 4], [6, 6, 6, 6]),  # every prediction a class absent from the labels
    ],
)
def test_against_scikit_learn_on_collapsed_predictions_and_missing_classes(labels, preds):
    classes = list(range(7))
    report = metrics.classification_report(labels, preds, [f"c{i}" for i in classes])
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, preds, labels=classes, zero_division=0)
    for i in classes:
        entry = report["per_class"][f"c{i}"]
        assert (entry["precision"], entry["recall"], entry["f1"], entry["support"]) == pytest.approx(
            (precision[i], recall[i], f1[i], support[i]))
    assert report["war"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about classes predicted but absent
        assert report["uar"] == pytest.approx(skm.balanced_accuracy_score(labels, preds))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scikit_learn_on_random_predictions(seed):
    rng = np.random.default_rng(seed)
    num_classes = 7
    labels = rng.integers(0, num_classes, size=500)
    # Mostly right with some noise so every figure is away from 0 and 1.
    preds = np.where(rng.random(500) < 0.6, labels, rng.integers(0, num_classes, size=500))
    classes = list(range(num_classes))
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, preds, num_classes), skm.confusion_matrix(labels, preds, labels=classes)
    )
    assert metrics.war(labels, preds, num_classes) == pytest.approx(skm.accuracy_score(labels, preds))
    assert metrics.uar(labels, preds, num_classes) == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, preds, labels=classes, zero_division=0)
    figures = metrics.per_class(labels, preds, num_classes)
    np.testing.assert_allclose(figures["precision"], precision)
    np.testing.assert_allclose(figures["recall"], recall)
    np.testing.assert_allclose(figures["f1"], f1)
    np.testing.assert_array_equal(figures["support"], support)
    report = metrics.classification_report(labels, preds, [f"c{i}" for i in classes])
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))
    np.testing.assert_allclose(
        report["confusion_matrix_normalized"],
        skm.confusion_matrix(labels, preds, labels=classes, normalize="true"),
    )


def test_aggregate_folds_mean_std_and_pooled():
    # Fold a: 2 clips both right (WAR 1); fold b: 4 clips, 1 right (WAR 0.25).
    folds = {
        "1": ([0, 1], [0, 1]),
        "2": ([0, 0, 1, 1], [0, 1, 0, 0]),
    }
    summary = metrics.aggregate_folds(folds, ["x", "y"])
    assert summary["per_fold"]["1"]["war"] == pytest.approx(1.0)
    assert summary["per_fold"]["2"]["war"] == pytest.approx(0.25)
    assert summary["mean_std"]["war"]["mean"] == pytest.approx(0.625)
    assert summary["mean_std"]["war"]["std"] == pytest.approx(np.std([1.0, 0.25], ddof=1))
    # Pooled: 3 right out of 6; recall x = 2/3, y = 1/3.
    assert summary["pooled"]["war"] == pytest.approx(0.5)
    assert summary["pooled"]["uar"] == pytest.approx(0.5)
    assert summary["pooled"]["num_clips"] == 6
    assert "pooled" in summary["pooled"]["description"]
    assert "mean" in summary["mean_std"]["description"]


def test_single_fold_has_zero_std():
    summary = metrics.aggregate_folds({"3": ([0, 1, 1], [0, 1, 0])}, ["x", "y"])
    assert summary["mean_std"]["war"]["std"] == 0.0
    assert summary["mean_std"]["war"]["mean"] == pytest.approx(summary["pooled"]["war"])


@pytest.mark.parametrize(
    "labels, preds, message",
    [
        ([0, 1], [0], "differ in length"),
        ([0, 7], [0, 1], "0..6"),
        ([0.5, 1.0], [0, 1], "integer"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_bad_inputs_are_rejected(labels, preds, message):
    with pytest.raises(ValueError, match=message):
        metrics.confusion_matrix(labels, preds, 7)
