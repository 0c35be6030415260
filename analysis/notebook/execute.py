"""Executing a notebook with injected parameters (papermill's convention), for tests and users.

A cell tagged ``injected-parameters`` is inserted after the cell tagged ``parameters``, so the
notebook's own defaults stay visible above it; the notebook file itself is never modified.

    nb = execute_notebook("notebooks/02_attention_over_keyframes.ipynb", {"DEMO": True, "SMALL": True})
"""

from __future__ import annotations

import ast
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def parameters_cell_index(nb) -> int:
    """Index of the cell tagged ``parameters``; ValueError when there is none."""
    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    raise ValueError("the notebook has no cell tagged 'parameters'")


def parameter_names(nb) -> list[str]:
    """Names assigned at top level in the ``parameters`` cell, in order."""
    source = nb.cells[parameters_cell_index(nb)].source
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names.extend(t.id for t in targets if isinstance(t, ast.Name))
    return names


def inject_parameters(nb, parameters: Mapping[str, Any]):
    """Insert a cell tagged ``injected-parameters`` after the ``parameters`` cell (in place).

    Values must be Python literals (their ``repr`` is written); an earlier injected cell is
    replaced. Returns ``nb``.
    """
    import nbformat

    for key, value in parameters.items():
        if not key.isidentifier():
            raise ValueError(f"parameter name {key!r} is not an identifier")
        try:
            ast.literal_eval(repr(value))
        except (ValueError, SyntaxError):
            raise ValueError(f"parameter {key}: {value!r} is not a Python literal (str, number, bool, list, ...)") from None
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    at = parameters_cell_index(nb)
    lines = ["# Parameters injected for this execution"] + [f"{k} = {v!r}" for k, v in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(at + 1, cell)
    return nb


def execute_notebook(
    path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: int = 600,
    output: str | os.PathLike | None = None,
    kernel_name: str = "python3",
):
    """Execute a notebook top to bottom with injected ``parameters``; return the executed notebook.

    Args:
        path: the .ipynb file (never modified).
        parameters: values injected after the ``parameters`` cell.
        cwd: the kernel's working directory (default: the notebook's folder, as in Jupyter).
        timeout: seconds allowed per cell.
        output: where to write the executed notebook (atomically), if anywhere.
    Raises:
        nbclient.exceptions.CellExecutionError naming the failing cell and its traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    from tdrag.atomic import write_text

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    try:
        client.execute()
    finally:
        if output is not None:
            write_text(output, nbformat.writes(nb))
    return nb
