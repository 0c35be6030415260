"""Committed notebooks carry no outputs, no execution counts and a `parameters` cell.

Outputs in git bloat diffs, leak local paths and go stale; the notebooks are executed by
test_notebooks.py instead. Clear them with ``jupyter nbconvert --clear-output --inplace
notebooks/*.ipynb`` (or "Edit > Clear Outputs of All Cells" in JupyterLab) before committing.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def notebook_problems(path: Path) -> list[str]:
    """What is wrong with a committed notebook: outputs, execution counts, no `parameters` cell."""
    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"{path.name}: cell {i} has {len(cell.outputs)} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"{path.name}: cell {i} has execution_count {cell.execution_count}")
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or "parameters" not in code[0].get("metadata", {}).get("tags", []):
        problems.append(f"{path.name}: the first code cell is not tagged 'parameters'")
    return problems


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    for stem in ("01_train", "02_attention_over_keyframes", "03_gru_trajectories", "04_attributions",
                 "05_results_report", "06_class_explorer"):
        assert f"{stem}.ipynb" in names, f"notebooks/{stem}.ipynb is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_is_clean(path):
    problems = notebook_problems(path)
    assert not problems, "\n".join(problems) + "\n(clear outputs before committing)"


def test_checker_catches_outputs(tmp_path):
    # The check itself must be able to fail: a notebook with an output and a count is flagged.
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["parameters"]})
    cell.execution_count = 3
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=3)]
    nb.cells = [cell]
    path = tmp_path / "dirty.ipynb"
    nbformat.write(nb, path)
    problems = notebook_problems(path)
    assert any("output" in p for p in problems) and any("execution_count" in p for p in problems)
    cell.outputs, cell.execution_count, cell.metadata = [], None, {}
    nbformat.write(nb, path)
    assert notebook_problems(path) == ["dirty.ipynb: the first code cell is not tagged 'parameters'"]


def unread_parameters(path: Path) -> list[str]:
    """Names the `parameters` cell assigns that papermill does not read (it then warns "Passed
    unknown parameter" and `python -m analysis dossier` cannot set them): papermill skips a line
    with a second " = ", such as one in its comment."""
    import papermill

    from analysis.notebook.execute import parameter_names

    read = set(papermill.inspect_notebook(str(path)))
    return [name for name in parameter_names(nbformat.read(path, as_version=4)) if name not in read]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_papermill_reads_every_parameter(path):
    assert unread_parameters(path) == []


def test_unread_parameters_are_found(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("A = 1  # fine\nMAX_CLIPS = 0  # clips (0 = all)\nB = 2",
                                          metadata={"tags": ["parameters"]})]
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, path)
    assert unread_parameters(path) == ["MAX_CLIPS"]
