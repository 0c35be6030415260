"""Project-level checks: environment.yml agrees with pyproject, the import boundary holds, the CLI
answers --help, and the README's quick start is the two make commands."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_TDRAG = {"analysis", "matplotlib", "captum", "seaborn", "pandas", "ipywidgets"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_this_project_with_its_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "conda-forge" in env["channels"]
    deps = env["dependencies"]
    python = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert python, "environment.yml pins no python"
    # The conda python must satisfy the project's requires-python lower bound.
    minimum = _pyproject()["project"]["requires-python"].removeprefix(">=")
    version = python[0].split("=")[-1]
    assert tuple(map(int, version.split("."))) >= tuple(map(int, minimum.split(".")))
    assert "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    extras = set(_pyproject()["project"]["optional-dependencies"])
    installs = [line for line in pip_section if line.replace("-e ", "").startswith(".")]
    assert len(installs) == 1, f"environment.yml should install this project once: {pip_section}"
    named = installs[0].split("[", 1)[1].rstrip("]").split(",")
    assert set(named) == extras, f"environment.yml installs extras {named}, pyproject has {sorted(extras)}"


def test_core_dependencies_are_the_headless_set():
    deps = " ".join(_pyproject()["project"]["dependencies"])
    for name in ("torch", "numpy", "opencv-python-headless", "ruamel.yaml", "tqdm"):
        assert name in deps
    for name in FORBIDDEN_IN_TDRAG - {"analysis"}:
        assert name not in deps, f"{name} must stay out of the core dependencies"


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_tdrag_never_imports_the_analysis_side():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_roots(path) & FORBIDDEN_IN_TDRAG)
        for path in (ROOT / "tdrag").rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"tdrag/ imports analysis-side packages: {offenders}"


def test_cli_help_lists_every_registered_command():
    from tdrag.cli import COMMANDS

    out = subprocess.run(
        [sys.executable, "-m", "tdrag", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for module in COMMANDS:
        assert module.rsplit(".", 1)[1] in out


def test_readme_quick_start_is_make_demo_and_make_test():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
