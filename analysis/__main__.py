"""``python -m analysis report RUN_DIR`` (also installed as ``tdrag-report RUN_DIR``).

Writes the report figures of a run directory (``predictions.csv``, ``log.csv``) or of a
cross-validation directory (``summary.json``, ``fold_<k>/``) into its ``report/`` folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def _report(args: argparse.Namespace) -> int:
    # No backend switch needed: the figures are built without pyplot and saved through Agg.
    from analysis.reports import ReportError, write_report

    status = 0
    for run_dir in args.run_dirs:
        try:
            written = write_report(run_dir)
        except (ReportError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        print(f"{run_dir}: wrote {len(written)} file(s)")
        for path in written:
            print(f"  {path}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Analysis tools for tdrag runs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and warnings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser(
        "report",
        help="write report figures and tables into RUN_DIR/report/",
        description=(
            "Confusion matrices (counts and row-normalised), per-class recall and training curves "
            "for a run directory (needs predictions.csv, from `tdrag eval`; log.csv from `tdrag "
            "train`). For a cross-validation directory (summary.json from `tdrag cv`) also the "
            "fold summary table as Markdown, LaTeX and CSV, and pooled figures."
        ),
    )
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run or cross-validation directory")
    report.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m analysis`` and the ``tdrag-report`` console script.

    ``tdrag-report RUN_DIR`` (no sub-command) is read as ``report RUN_DIR``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # `report` is the only sub-command: supply it when the first positional argument is a path.
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] != "report":
        argv.insert(first, "report")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
