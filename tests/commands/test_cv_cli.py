"""`tdrag cv` over two folds of a tiny set: per-fold runs and both aggregations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tdrag import metrics
from tdrag.cli import main
from tdrag.config import save_config
from tdrag.runs.predictions import read_predictions
from tests.run_fixtures import tiny_config


def test_cv_two_folds_writes_both_aggregations(tiny_cache, tmp_path, capsys):
    config_path = tmp_path / "tiny.yaml"
    save_config(tiny_config(tiny_cache, tmp_path / "cv", epochs=1), config_path)
    assert main(["cv", "--config", str(config_path), "--folds", "1,2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "mean +- std" in out and "pooled" in out
    base = tmp_path / "cv"
    summary = json.loads((base / "summary.json").read_text())
    assert summary["folds"] == ["1", "2"]

    fold_wars, labels, preds = [], [], []
    for fold in (1, 2):
        fold_metrics = json.loads((base / f"fold_{fold}" / "report" / "metrics.json").read_text())
        assert fold_metrics["fold"] == fold
        _, y, p = read_predictions(base / f"fold_{fold}" / "predictions.csv")
        fold_wars.append(metrics.war(y, p, 7))
        labels.append(y)
        preds.append(p)
        assert summary["per_fold"][str(fold)]["war"] == pytest.approx(fold_metrics["best"]["test"]["war"])
    assert summary["mean_std"]["war"]["mean"] == pytest.approx(np.mean(fold_wars))
    assert summary["mean_std"]["war"]["std"] == pytest.approx(np.std(fold_wars, ddof=1))
    assert summary["pooled"]["war"] == pytest.approx(metrics.war(np.concatenate(labels), np.concatenate(preds), 7))
    assert summary["pooled"]["num_clips"] == sum(len(y) for y in labels)
    assert "last_epoch" in summary and "pooled" in summary["last_epoch"]
    assert "optimistic" in summary["label"]
    text = (base / "summary.md").read_text()
    assert "mean ± std over folds" in text and "pooled over all folds' predictions" in text

    # --resume skips finished folds (their checkpoints are not rewritten).
    stamp = (base / "fold_1" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert main(["cv", "--config", str(config_path), "--folds", "1,2", "--resume", "--no-progress"]) == 0
    assert (base / "fold_1" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp


def test_cv_rejects_bad_fold_list(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["cv", "--config", str(tmp_path / "x.yaml"), "--folds", "1,one"])
    assert "--folds" in capsys.readouterr().err
