"""The analysis package's layers: each module imports only its own layer and those below it.

    plotting, demo_media  <  internals  <  attribution  <  report  <  notebook  (<  __init__, __main__)

Function-level imports count too: a figure module must never reach notebook glue (which can
train), and nothing may import a module that no longer exists.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "analysis"
RANK = {"plotting": 0, "demo_media": 0, "internals": 1, "attribution": 2, "report": 3, "notebook": 4,
        "__init__": 5, "__main__": 5}
MODULES = sorted(p for p in ROOT.rglob("*.py"))


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n == "analysis" or n.startswith("analysis.")]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    return ".".join(rel.parts)


def test_every_subpackage_is_known():
    assert {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == {
        "internals", "attribution", "report", "notebook"}
    top = {p.stem for p in ROOT.glob("*.py")}
    assert top <= set(RANK), f"unexpected top-level modules: {top - set(RANK)}"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_point_down_the_layers(path):
    me = module_name(path)
    mine = RANK[layer(me) if layer(me) in RANK else path.stem]
    for name in imported_modules(path):
        parts = name.split(".")
        # `from analysis.report import reports` names a module; `from analysis.x.y import f` a function.
        target = name if importlib.util.find_spec(name.rsplit(".", 1)[0] if len(parts) > 2 else name) else None
        assert target, f"{me} imports {name}, which does not exist"
        if len(parts) == 1:
            continue
        theirs = RANK[parts[1]]
        assert theirs <= mine, f"{me} (layer {layer(me)}) imports {name} from a higher layer"


def test_the_layer_check_can_fail(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from analysis.notebook.widgets import ClassExplorer\n")
    assert "analysis.notebook.widgets" in imported_modules(bad)
