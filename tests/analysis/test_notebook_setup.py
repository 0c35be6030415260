"""Notebook plumbing: parameter injection, notebook execution, run lookup, configs, exports.

The tiny demo run itself (``ensure_demo_run(small=True)``) is made and used by
tests/notebooks (one per session); here the pieces around it are tested.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest

from analysis.notebook_setup import (
    SMALL_DEMO,
    _limit_per_class,
    cache_counts,
    class_index,
    ensure_run,
    execute_notebook,
    export_table,
    inject_parameters,
    parameter_names,
    read_preset,
    training_config,
    SYNTHETIC_PRESET,
    DFEW_PRESET,
)
from tdrag.data.labels import DFEW_CLASSES


def notebook(*sources: str, tag_first: bool = True):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title")]
    for i, src in enumerate(sources):
        meta = {"tags": ["parameters"]} if i == 0 and tag_first else {}
        nb.cells.append(nbformat.v4.new_code_cell(src, metadata=meta))
    return nb


def test_parameter_names_and_injection():
    nb = notebook("A = 1\nB: str = 'x'  # comment\nimport os\nC, D = 1, 2", "print(A)")
    assert parameter_names(nb) == ["A", "B"]
    inject_parameters(nb, {"A": 5, "PATH": "/tmp/x"})
    assert nb.cells[2].metadata["tags"] == ["injected-parameters"]
    assert "A = 5" in nb.cells[2].source and "PATH = '/tmp/x'" in nb.cells[2].source
    # A second injection replaces the first instead of stacking.
    inject_parameters(nb, {"A": 6})
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "A = 6" in injected[0].source
    assert nb.cells[3].source == "print(A)"


def test_injection_errors():
    with pytest.raises(ValueError, match="parameters"):
        parameter_names(notebook("A = 1", tag_first=False))
    with pytest.raises(ValueError, match="identifier"):
        inject_parameters(notebook("A = 1"), {"not a name": 1})
    with pytest.raises(ValueError, match="not a Python literal"):
        inject_parameters(notebook("A = 1"), {"A": object()})  # no literal repr


def test_execute_notebook_uses_injected_values(tmp_path):
    nb = notebook("VALUE = 1\nOUT = ''", "from pathlib import Path\nPath(OUT).write_text(str(VALUE * 2))\nVALUE")
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "result.txt"
    executed = execute_notebook(path, {"VALUE": 21, "OUT": str(out)}, timeout=60, output=tmp_path / "done.ipynb")
    assert out.read_text() == "42"
    assert executed.cells[-1].outputs[0]["data"]["text/plain"] == "21"
    assert (tmp_path / "done.ipynb").is_file()
    # The source notebook is never modified.
    assert not any(c.get("outputs") for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_execute_notebook_raises_on_error(tmp_path):
    from nbclient.exceptions import CellExecutionError

    path = tmp_path / "bad.ipynb"
    nbformat.write(notebook("X = 1", "raise RuntimeError('boom ' + str(X))"), path)
    with pytest.raises(CellExecutionError, match="boom 1"):
        execute_notebook(path, timeout=60)


def test_class_index():
    assert class_index("happy") == 0 and class_index("Fear") == 6 and class_index(3) == 3
    with pytest.raises(ValueError, match="Happy"):
        class_index("Joy")
    with pytest.raises(ValueError, match="out of range"):
        class_index(7)


def test_limit_per_class():
    rows = np.arange(10, 20)
    labels = np.array([0, 0, 0, 1, 1, 2, 0, 1, 2, 2])
    kept = _limit_per_class(rows, labels, 2)
    assert kept.tolist() == [10, 11, 13, 14, 15, 18]
    assert _limit_per_class(rows, labels, None) is rows


def test_ensure_run_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        ensure_run(tmp_path / "my_dfew_run")
    ckpt = tmp_path / "x" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "last.pt").write_bytes(b"")
    assert ensure_run(tmp_path / "x") == tmp_path / "x"


def test_presets_and_training_config(tmp_path):
    config, synth = read_preset(SYNTHETIC_PRESET)
    assert synth["clips"] > 0 and config.data.frames > 0
    data = tmp_path / "data"
    (data / "synthetic").mkdir(parents=True)
    (data / "synthetic" / "meta.json").write_text("{}")
    cfg = training_config(data, tmp_path / "runs" / "r", model="r3d18", fold=2, epochs=3)
    assert cfg.model.name == "r3d18" and cfg.data.fold == 2 and cfg.train.epochs == 3
    assert cfg.data.cache == str(tmp_path / "runs" / "cache") and cfg.train.run_dir == str(tmp_path / "runs" / "r")
    assert cfg.data.frames == config.data.frames  # the synthetic preset, detected from meta.json
    dfew = training_config(tmp_path / "DFEW", tmp_path / "r")
    assert dfew.data.frames == read_preset(DFEW_PRESET)[0].data.frames and dfew.data.root == str(tmp_path / "DFEW")
    small = training_config(data, tmp_path / "r", small=True)
    assert small.model.width == SMALL_DEMO["width"] and small.train.epochs == SMALL_DEMO["epochs"]


def test_cache_counts():
    class FakeCache:
        labels = np.array([0, 1, 1, 2, 6, 6, 6])

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
