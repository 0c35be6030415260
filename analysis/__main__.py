"""``python -m analysis report RUN_DIR`` and ``python -m analysis dossier RUN_DIR --out DIR``
(also installed as ``tdrag-report``); the commands live in :mod:`analysis.report.cli`."""

from __future__ import annotations

import sys

from analysis.report.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
