"""Every command the experiment scripts' docstrings show is one they accept, with config keys that exist.

Each ``python benchmarks/<script>.py ...`` line of the docstrings of bench_ablation.py,
bench_heldout.py and bench_head_diagnosis.py (continuation lines joined, comments dropped) is split
with shlex and parsed by that script's own argparse; its ``--variants`` must be variants of the
ablation, its ``--config`` a file, and every ``--extra key=value`` must apply to the recipe (and to
each variant named) through ``tdrag.config.apply_overrides``: an unknown key or a bad value fails
here, read from tdrag.config as it is when the test runs, not when a 75-minute benchmark starts.
Nothing is trained.
"""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

from analysis.experiments.ablation import VARIANTS
from analysis.experiments.data import CONFIG

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ("bench_ablation", "bench_heldout", "bench_head_diagnosis")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_commands(doc: str) -> list[list[str]]:
    """The ``python benchmarks/...`` commands of a docstring as argv lists."""
    commands, current = [], ""
    for line in doc.splitlines():
        text = line.strip()
        if not current and not text.startswith("python benchmarks/"):
            continue
        current = f"{current} {text}" if current else text
        if current.endswith("\\"):  # a continuation line follows
            current = current[:-1].rstrip()
            continue
        commands.append(shlex.split(current, comments=True))
        current = ""
    return commands


def check_command(argv: list[str]) -> list[str]:
    """Parse ``argv`` (``python benchmarks/<script>.py ...``) with the script's argparse and check its
    variants, recipe and overrides; return the overrides it names. Raises on anything invalid."""
    from tdrag.config import apply_overrides, load_config

    assert argv[0] == "python" and argv[1].startswith("benchmarks/"), argv
    name = Path(argv[1]).stem
    assert name in SCRIPTS, f"{argv[1]}: not one of the experiment scripts"
    args = load(name).build_parser().parse_args(argv[2:])
    recipe = Path(getattr(args, "config", None) or CONFIG)
    assert (REPO / recipe).is_file(), f"{recipe}: no such recipe"
    base = load_config(REPO / recipe)
    extra = list(getattr(args, "extra", None) or [])
    variants = args.variants.split(",") if name != "bench_heldout" and getattr(args, "variants", None) else []
    unknown = [v for v in variants if v not in VARIANTS]
    assert not unknown, f"{' '.join(argv)}: unknown variant(s) {unknown}"
    for variant in variants or [None]:
        apply_overrides(base, [*(VARIANTS[variant] if variant else ()), *extra])  # ConfigError if invalid
    return extra


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_documented_command_is_valid(name):
    commands = documented_commands(load(name).__doc__)
    assert commands, f"{name}: no documented command found (has the docstring's form changed?)"
    for argv in commands:
        check_command(argv)


def test_the_documented_overrides():
    """Which keys the docstrings use (the list the lead checks against a renamed config)."""
    used = {name: [e for argv in documented_commands(load(name).__doc__) for e in check_command(argv)]
            for name in SCRIPTS}
    assert used["bench_ablation"] and used["bench_head_diagnosis"]  # each shows one design explored
    assert all("=" in e for entries in used.values() for e in entries)


def test_the_check_can_fail():
    from tdrag.config import ConfigError

    doc = """Example:

        python benchmarks/bench_head_diagnosis.py --variants tdrag \\
            --extra model.no_such_key=gru_residual   # a key that does not exist
    """
    (argv,) = documented_commands(doc)
    assert argv[-2:] == ["--extra", "model.no_such_key=gru_residual"]
    with pytest.raises(ConfigError, match="no_such_key"):
        check_command(argv)
    with pytest.raises(ConfigError):  # a key that exists, with a value it cannot take
        check_command(["python", "benchmarks/bench_ablation.py", "--extra", "data.frames=many"])
    with pytest.raises(AssertionError, match="unknown variant"):
        check_command(["python", "benchmarks/bench_ablation.py", "--variants", "tdrag,tdrag_gru"])
    with pytest.raises(SystemExit):  # a flag the script does not have
        check_command(["python", "benchmarks/bench_heldout.py", "--ablation", "r.json", "--epochs", "3"])
