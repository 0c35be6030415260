"""Helpers shared by the train / eval / cv / demo commands (printing, the errors they report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tdrag.checkpoints import CheckpointError
from tdrag.config import ConfigError
from tdrag.data.cache import CacheError
from tdrag.engine import RunExistsError, TrainingDiverged

# Failures a command reports as one line on stderr (exit 1) instead of a traceback.
ENGINE_ERRORS = (CacheError, CheckpointError, ConfigError, RunExistsError, TrainingDiverged, ValueError,
                 FileNotFoundError)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def print_run_summary(run_dir: str | Path, metrics: dict[str, Any]) -> None:
    """Print the last and best epochs' test WAR/UAR (labelled) and where the report is."""
    run_dir = Path(run_dir)
    for name in ("last", "best"):
        item = metrics.get(name)
        if item:
            print(f"{item['label']:<40} epoch {item['epoch']:>3}: test WAR {_pct(item['test']['war'])}  "
                  f"UAR {_pct(item['test']['uar'])}")
    selection = metrics.get("selection", {})
    if selection.get("optimistic"):
        print("note: the best epoch was chosen on the test fold (optimistic); see the report")
    print(f"report: {run_dir / 'report' / 'per_class_recall.md'} (metrics.json, confusion_matrix.csv beside it)")
