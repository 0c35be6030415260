"""analysis.notebook.training (what 01_train calls), class lookup and table export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.notebook.training import DFEW_PRESET, cache_counts, training_config
from analysis.plotting import class_index
from analysis.report.tables import export_table
from tdrag.config import load_config
from tdrag.data.labels import DFEW_CLASSES
from tdrag.train.demo import SMALL_OVERRIDES, demo_config


def test_class_index():
    assert class_index("happy", DFEW_CLASSES) == 0 and class_index("Fear", DFEW_CLASSES) == 6
    assert class_index(3, DFEW_CLASSES) == 3
    with pytest.raises(ValueError, match="Happy"):
        class_index("Joy", DFEW_CLASSES)
    with pytest.raises(ValueError, match="out of range"):
        class_index(7, DFEW_CLASSES)
    mafw = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
            "helplessness", "disappointment"]
    assert class_index("Disappointment", mafw) == 10


def test_training_config_uses_tdrag_demo_for_synthetic_data(tmp_path):
    cfg = training_config(tmp_path / "runs" / "r", model="r3d18", fold=2, epochs=3)
    demo = demo_config(tmp_path / "runs")
    assert cfg.model.name == "r3d18" and cfg.data.fold == 2 and cfg.train.epochs == 3
    assert cfg.data.cache == str(tmp_path / "runs" / "cache") and cfg.train.run_dir == str(tmp_path / "runs" / "r")
    assert cfg.data.root == demo.data.root and cfg.synth == demo.synth and cfg.data.frames == demo.data.frames
    small = training_config(tmp_path / "r", small=True)
    small_demo = demo_config(tmp_path, small=True)
    assert small.model.width == small_demo.model.width and small.train.epochs == small_demo.train.epochs
    assert any(o.startswith("model.width=") for o in SMALL_OVERRIDES)


def test_training_config_for_a_real_root(tmp_path):
    dfew = training_config(tmp_path / "r", data_root=tmp_path / "DFEW", device="cpu")
    assert dfew.data.frames == load_config(DFEW_PRESET).data.frames and dfew.data.root == str(tmp_path / "DFEW")
    assert dfew.train.device == "cpu" and dfew.data.cache == str(tmp_path / "cache")


def test_cache_counts():
    class FakeCache:
        labels = np.array([0, 1, 1, 2, 6, 6, 6])
        class_names = DFEW_CLASSES

        def rows(self, fold, split):
            return np.array([0, 1, 2, 4]) if split == "train" else np.array([3, 5, 6])

    table = cache_counts(FakeCache(), 1)
    assert list(table.index) == list(DFEW_CLASSES) + ["total"]
    assert table.loc["Sad", "train"] == 2 and table.loc["Fear", "test"] == 2
    assert table.loc["total"].tolist() == [4, 3]


def test_export_table(tmp_path):
    table = pd.DataFrame({"recall": [0.5, 0.25]}, index=pd.Index(["Happy", "Sad_x"], name="class"))
    paths = export_table(table, tmp_path / "out", "recall_table", caption="Recall")
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    assert pd.read_csv(paths[0], index_col=0).loc["Happy", "recall"] == 0.5
    assert "| Happy" in paths[1].read_text()
    tex = paths[2].read_text()
    assert "\\caption{Recall}" in tex and "Sad\\_x" in tex and "tab:recall_table" in tex
