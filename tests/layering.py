"""The import scanner and the layer rule behind the layering tests of ``tdrag/`` and ``analysis/``.

A package is cut into layers, each with a rank. A module may import its own layer and the layers of
lower rank; two different layers of the same rank stay apart (neither imports the other). Imports
inside functions count as much as those at the top of a file: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from pathlib import Path


def module_name(path: Path, root: Path) -> str:
    """``root/tdrag/train/fit.py`` -> ``tdrag.train.fit`` (a package's ``__init__`` -> the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of a module of ``package`` in ``source``, wherever it
    stands. ``from a.b import c`` names ``a.b.c`` when ``c`` is a module, ``a.b`` otherwise; a
    module that does not exist is returned as written, so that the rule can name it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((node.lineno, submodule if _exists(submodule) else node.module))
    return [(line, name) for line, name in found if name == package or name.startswith(package + ".")]


def layer_violations(me: str, imports: list[tuple[int, str]], layer_of: Callable[[str], str],
                     rank: dict[str, int]) -> list[str]:
    """What breaks the rule in module ``me`` importing ``imports``: one sentence per import."""
    mine = layer_of(me)
    problems = []
    for line, name in imports:
        if not _exists(name):
            problems.append(f"{me}:{line} imports {name}, which does not exist")
            continue
        theirs = layer_of(name)
        if theirs == mine:
            continue
        if rank[theirs] > rank[mine]:
            problems.append(f"{me}:{line} (layer {mine}) imports {name} from the higher layer {theirs}")
        elif rank[theirs] == rank[mine]:
            problems.append(f"{me}:{line} (layer {mine}) imports {name} from its sibling layer {theirs}")
    return problems


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (module -> modules it imports), each as a closed path."""
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles
