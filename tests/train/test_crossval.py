"""tdrag.train.crossval.summarize: the folds' own class names (never a DFEW default), checked alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tdrag.data.labels import MAFW_CLASSES
from tdrag.runs.layout import RunPaths
from tdrag.runs.predictions import Predictions
from tdrag.runs.report import write_report
from tdrag.train.crossval import FoldError, summarize


def _fold(run_dir, class_names, seed: int):
    n = 3 * len(class_names)
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(class_names)
    probs = rng.dirichlet(np.ones(len(class_names)), size=n).astype(np.float32)
    preds = Predictions(rows=np.arange(n), video_ids=[str(i) for i in range(n)], labels=labels, probabilities=probs)
    write_report(run_dir, class_names, last=(2, preds), best=(1, preds), selection_split="val")
    return labels, probs.argmax(axis=1)


def test_an_eleven_class_protocol_is_summarised_with_its_own_classes(tmp_path):
    truth = [_fold(tmp_path / f"fold_{k}", MAFW_CLASSES, seed=k) for k in (1, 2)]
    summary = summarize(tmp_path, [1, 2])
    assert list(summary["pooled"]["per_class"]) == list(MAFW_CLASSES)
    labels, preds = (np.concatenate(parts) for parts in zip(*truth))
    assert summary["pooled"]["war"] == pytest.approx(float((labels == preds).mean()))
    assert json.loads((tmp_path / "summary.json").read_text())["last_epoch"]["pooled"]["num_clips"] == len(labels)


def test_a_fold_report_without_class_names_or_with_others_is_refused(tmp_path):
    _fold(tmp_path / "fold_1", MAFW_CLASSES, seed=1)
    _fold(tmp_path / "fold_2", MAFW_CLASSES[:7], seed=2)
    with pytest.raises(FoldError, match="differ from the other folds"):
        summarize(tmp_path, [1, 2])
    metrics = RunPaths(tmp_path / "fold_2").metrics
    report = json.loads(metrics.read_text())
    del report["class_names"]
    metrics.write_text(json.dumps(report))
    with pytest.raises(FoldError, match="without class_names"):
        summarize(tmp_path, [2])
