"""Every notebooks/*.ipynb runs top to bottom on synthetic data at small size.

Parameters are injected after each notebook's ``parameters`` cell (papermill convention):
``SMALL = True``, the shared small demo run for the analysis notebooks, and temporary folders for
anything a notebook writes, so nothing lands in the repository. Only names a notebook declares in
its ``parameters`` cell are injected. The executed copy of a failing notebook is kept under the
test's tmp folder (``executed_<name>.ipynb``) to read its outputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest

from analysis.notebook.execute import execute_notebook, parameter_names

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Per-cell limit; at small size a whole notebook takes seconds to a minute on 2 cores.
CELL_TIMEOUT = 300


def notebook_parameters(path: Path, demo_run: Path, tmp_path: Path) -> dict:
    """The values injected into ``path``: only the names its parameters cell declares."""
    declared = parameter_names(nbformat.read(path, as_version=4))
    values = {
        "SMALL": True,
        "DEVICE": "cpu",
        "RUN_DIR": str(demo_run),
        "DATA_ROOT": "",
        "OUT_DIR": str(tmp_path / "out"),
        "EXPORT_DIR": str(tmp_path / "export"),
    }
    if path.stem.startswith("01_"):
        # The training notebook makes its own data, cache and run, in tmp.
        values["RUN_DIR"] = str(tmp_path / "train" / "run")
    return {k: v for k, v in values.items() if k in declared}


def test_every_notebook_declares_small():
    for path in NOTEBOOKS:
        declared = parameter_names(nbformat.read(path, as_version=4))
        assert "SMALL" in declared, f"{path.name}: parameters cell does not define SMALL"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, demo_run, tmp_path):
    params = notebook_parameters(path, demo_run, tmp_path)
    start = time.perf_counter()
    nb = execute_notebook(path, params, timeout=CELL_TIMEOUT, output=tmp_path / f"executed_{path.name}")
    seconds = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0].ename}: {errors[0].evalue}"
    # Every notebook shows something: a figure, a table or a widget.
    shown = {"image/png", "text/html", "application/vnd.jupyter.widget-view+json"}
    rich = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type in ("display_data", "execute_result") and shown & set(o.get("data", {}))]
    assert rich, f"{path.name}: executed without displaying any figure, table or widget"
    print(f"{path.name}: {seconds:.1f} s")


def test_analysis_notebooks_are_library_calls():
    """No logic cells: no def, class, loop or if statement in any analysis notebook's code."""
    import ast

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            source = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
            kinds = {type(n).__name__ for n in ast.walk(ast.parse(source))}
            logic = kinds & {"FunctionDef", "ClassDef", "For", "While", "If", "With", "Try"}
            assert not logic, f"{path.name}: cell {i} holds {sorted(logic)}; move it into the library"


def test_every_analysis_notebook_shows_the_checkpoint_and_03_the_step_readouts():
    for path in NOTEBOOKS:
        if path.stem.startswith(("01_", "05_")):
            continue  # 01 trains; 05 reads predictions.csv, labelled by its metrics.json
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert "run.describe()" in code or "checkpoint.reason" in code, f"{path.name} does not say which checkpoint"
    code = "\n".join(c.source for c in nbformat.read(NOTEBOOK_DIR / "03_gru_trajectories.ipynb", as_version=4).cells)
    assert "step_readout_meaning" in code


def test_demo_is_asked_for_and_a_missing_run_says_how_to_make_one(demo_run, tmp_path):
    from nbclient.exceptions import CellExecutionError

    path = NOTEBOOK_DIR / "03_gru_trajectories.ipynb"
    # DEMO = True on a finished demo reuses it (tdrag.train.demo.ensure_demo) and the notebook runs.
    nb = execute_notebook(path, {"RUN_DIR": str(demo_run), "DEMO": True, "SMALL": True, "DEVICE": "cpu"},
                          timeout=CELL_TIMEOUT)
    texts = [o.get("data", {}).get("text/markdown", "") for c in nb.cells for o in c.get("outputs", [])]
    assert any("Checkpoint shown" in t for t in texts) and any("Not causal" in t or "Causal time" in t for t in texts)
    # Without DEMO a missing run is an error that says how to make one; nothing is trained.
    missing = tmp_path / "nowhere" / "run"
    with pytest.raises(CellExecutionError, match="DEMO = True"):
        execute_notebook(path, {"RUN_DIR": str(missing), "SMALL": True, "DEVICE": "cpu"}, timeout=CELL_TIMEOUT)
    assert not missing.parent.exists()


@pytest.mark.slow
def test_results_report_with_cv(demo_run, tmp_path):
    """05 with CV_DIR: a real (tiny, 2-fold, 1-epoch) `tdrag cv` directory, summarised and exported."""
    from tdrag.config import load_config, replace
    from tdrag.train.crossval import cross_validate

    config = load_config(demo_run / "config.yaml")
    config = replace(config, train={"run_dir": str(tmp_path / "cv"), "epochs": 1})
    cross_validate(config, [1, 2], progress=False)
    path = NOTEBOOK_DIR / "05_results_report.ipynb"
    params = {"RUN_DIR": str(demo_run), "CV_DIR": str(tmp_path / "cv"), "EXPORT_DIR": str(tmp_path / "export"),
              "SMALL": True}
    nb = execute_notebook(path, params, timeout=CELL_TIMEOUT, output=tmp_path / "executed_05_cv.ipynb")
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert any("text/html" in o.get("data", {}) for o in last.outputs), "no 5-fold summary table shown"
    for name in ("summary.md", "summary.tex", "summary.csv"):
        assert (tmp_path / "cv" / "report" / name).is_file()
