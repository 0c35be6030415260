"""tdrag's layers: each module imports only its own layer and those below it, and nothing imports in a circle.

    ground floor (config, config_sections, config_versions, errors, atomic, ownership, runtime, distributed, metrics)
      <  data  <  runs  <  models  <  train | predict  <  commands  <  cli  <  __main__

``train`` and ``predict`` share a floor and stay apart: training never needs video inference, and
predicting never needs the trainer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import import_cycles, imported_modules, layer_violations, module_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tdrag"
GROUND = {"config", "config_sections", "config_versions", "errors", "atomic", "ownership", "runtime", "distributed", "metrics"}
RANK = {"ground": 0, "data": 1, "runs": 2, "models": 3, "train": 4, "predict": 4, "commands": 5, "cli": 6,
        "__main__": 7}
MODULES = sorted(PACKAGE.rglob("*.py"))


def layer(module: str) -> str:
    """``tdrag.train.fit`` -> ``train``; ``tdrag.config`` -> ``ground``; ``tdrag`` itself -> ``ground``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "ground"
    name = parts[1]
    return "ground" if name in GROUND else name


def test_every_folder_and_module_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == {name for name in RANK if name not in ("ground", "cli", "__main__")}
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top <= GROUND | {"cli", "__main__"}, f"top-level modules without a layer: {top - GROUND}"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p, ROOT) for p in MODULES])
def test_imports_point_down_the_layers(path):
    me = module_name(path, ROOT)
    assert not layer_violations(me, imported_modules(path.read_text(), "tdrag"), layer, RANK)


def test_no_module_imports_in_a_circle():
    graph = {module_name(p, ROOT): {name for _, name in imported_modules(p.read_text(), "tdrag")} for p in MODULES}
    # A package's own __init__ is imported with every module below it; that is not an arrow.
    graph = {me: {t for t in targets if not me.startswith(t + ".")} for me, targets in graph.items()}
    assert import_cycles(graph) == []


@pytest.mark.parametrize("source, problem", [
    ("from tdrag.train.fit import fit\n", "from the higher layer train"),
    ("def f():\n    from tdrag.predict.inference import predict_video\n", "from the higher layer predict"),
    ("import tdrag.models.nothing_here\n", "does not exist"),
])
def test_the_layer_rule_names_what_breaks_it(source, problem):
    """The rule itself, run on modules that break it (a lazy import counts as much as a top one)."""
    found = layer_violations("tdrag.data.cache", imported_modules(source, "tdrag"), layer, RANK)
    assert len(found) == 1 and problem in found[0] and "tdrag.data.cache:" in found[0]
    sibling = layer_violations("tdrag.train.fit", imported_modules("from tdrag.predict import video\n", "tdrag"),
                               layer, RANK)
    assert len(sibling) == 1 and "sibling layer predict" in sibling[0]


def test_a_circle_is_found():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
