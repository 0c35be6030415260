"""analysis.notebook.execute: parameters cells, injection (papermill convention), execution."""

from __future__ import annotations

import nbformat
import pytest

from analysis.notebook.execute import execute_notebook, inject_parameters, parameter_names


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
