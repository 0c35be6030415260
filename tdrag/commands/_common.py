"""Helpers shared by the train / eval / cv / demo commands: their common options and printing.

Errors are not handled here: commands raise, and ``tdrag.cli.main`` prints the one-line message.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tdrag.runs.layout import RunPaths


def add_run_options(parser: argparse.ArgumentParser, config_help: str, what: str) -> None:
    """``--config``, ``KEY=VALUE`` overrides, ``--resume``, ``--overwrite``, ``--no-progress``."""
    parser.add_argument("--config", required=True, help=config_help)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(intermixed="overrides")  # taken among the options too (tdrag.cli)
    parser.add_argument("--resume", action="store_true", help=f"continue {what} from its checkpoints/last.pt")
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} already there (tdrag's files only)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def print_run_summary(run_dir: str | Path, metrics: dict[str, Any]) -> None:
    """Print the last and best epochs' test WAR/UAR (labelled) and where the report is."""
    paths = RunPaths(run_dir)
    for name in ("last", "best"):
        item = metrics.get(name)
        if item:
            print(f"{item['label']:<40} epoch {item['epoch']:>3}: test WAR {_pct(item['test']['war'])}  "
                  f"UAR {_pct(item['test']['uar'])}")
    selection = metrics.get("selection", {})
    if selection.get("optimistic"):
        print("note: the best epoch was chosen on the test fold (optimistic); see the report")
    print(f"report: {paths.report_file('per_class_recall.md')} (metrics.json, confusion_matrix.csv beside it)")
