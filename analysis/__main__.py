"""``python -m analysis report RUN_DIR``, ``python -m analysis dossier RUN_DIR --out DIR`` and
``python -m analysis regions RUN_DIR --out FILE.csv``
(also installed as ``tdrag-report``); the commands live in :mod:`analysis.report.cli`."""

from __future__ import annotations

import sys

try:
    from analysis.report.cli import build_parser, main
except KeyboardInterrupt:  # Ctrl-C before the command line is even read: one line, as from main
    print("interrupted", file=sys.stderr)
    raise SystemExit(130) from None

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
