"""The analysis package's layers: each module imports only its own layer and those below it.

    plotting, demo_media  <  internals  <  attribution  <  report, experiments  <  notebook  (<  __init__, __main__)

Function-level imports count too: a figure module must never reach notebook glue (which can
train), and nothing may import a module that no longer exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import imported_modules, layer_violations, module_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "analysis"
RANK = {"plotting": 0, "demo_media": 0, "internals": 1, "attribution": 2, "report": 3, "experiments": 3, "notebook": 4,
        "__init__": 5, "__main__": 5}
MODULES = sorted(PACKAGE.rglob("*.py"))


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_subpackage_is_known():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == {
        "internals", "attribution", "report", "experiments", "notebook"}
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= set(RANK), f"unexpected top-level modules: {top - set(RANK)}"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p, ROOT) for p in MODULES])
def test_imports_point_down_the_layers(path):
    me = module_name(path, ROOT)
    assert not layer_violations(me, imported_modules(path.read_text(), "analysis"), layer, RANK)


def test_the_layer_check_can_fail():
    """The rule itself, run on a figure module that reaches notebook glue from inside a function."""
    bad = "def f():\n    from analysis.notebook.widgets import ClassExplorer\n"
    found = layer_violations("analysis.internals.attention", imported_modules(bad, "analysis"), layer, RANK)
    assert found == ["analysis.internals.attention:2 (layer internals) imports analysis.notebook.widgets "
                     "from the higher layer notebook"]
    missing = layer_violations("analysis.report.cli", imported_modules("import analysis.report.gone\n", "analysis"),
                               layer, RANK)
    assert missing == ["analysis.report.cli:1 imports analysis.report.gone, which does not exist"]
