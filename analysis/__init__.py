"""Inspection of trained tdrag models, on top of tdrag (tdrag never imports this package).

Layers, each importing only those below it::

    analysis.plotting      colours, pyplot-free figures, PNG bytes, class lookup
    analysis.demo_media    a real face video for demos and tests (the astronaut, panned and zoomed)
    analysis.internals     the opened Run (one cached inspect pass), attention, trajectories, ground truth,
                           facial regions
    analysis.attribution   Captum methods and the CAM family, their defaults, faithfulness checks, overlay
                           figures, animations
    analysis.report        tables, run/CV report figures, region profiles, per-class dossier, the CLI
    analysis.experiments   the benchmarks' experiments (ablation, held-out draw, head diagnosis): typed run
                           results, checkpoint evaluation with the GRU on/off, the paired summary (beside report)
    analysis.notebook      widgets, live curves, training glue, notebook execution

The names most notebooks need are importable from here (loaded on first use)::

    from analysis import open_run
    run = open_run("runs/demo/run")
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "Run": "analysis.internals.run",
    "RunNotFound": "analysis.internals.run",
    "open_run": "analysis.internals.run",
    "attribute": "analysis.attribution.attribute",
    "attribute_clips": "analysis.attribution.attribute",
    "attribute_dataset": "analysis.attribution.attribute",
    "method_options": "analysis.attribution.defaults",
    "write_report": "analysis.report.reports",
    "build_dossier": "analysis.report.dossier",
    "ClassExplorer": "analysis.notebook.widgets",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    # Lazy, so `import analysis` (and `python -m analysis`) stays light.
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'analysis' has no attribute {name!r}")
