"""``python -m analysis report RUN_DIR`` / ``python -m analysis dossier RUN_DIR --out DIR`` /
``python -m analysis regions RUN_DIR --out FILE.csv``.

(``tdrag-report RUN_DIR`` is the same as ``python -m analysis report RUN_DIR``.) Every failure the
user can fix ends in one line, ``error: <path>: <problem>`` (``error: <path>:<line>: <problem>`` for
a bad predictions file), and exit status 1: never a traceback. That includes the operating
system's errors (a read-only run directory, an ``--out`` under a file, a full disk), said as
``tdrag`` says them (``tdrag.errors.error_message``), and Ctrl-C: ``interrupted``, status 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tdrag.errors import TdragError, error_message, quiet_teardown

#: What a command reports in one line instead of a traceback.
USER_ERRORS = (TdragError, OSError, ValueError, MemoryError)


def _report(args: argparse.Namespace) -> int:
    # No backend switch needed: the figures are built without pyplot and saved through Agg.
    from analysis.report.reports import write_report

    status = 0
    for run_dir in args.run_dirs:
        try:
            written = write_report(run_dir)
        except USER_ERRORS as err:  # one run's failure does not stop the others
            print(f"error: {error_message(err)}", file=sys.stderr)
            status = 1
            continue
        print(f"{run_dir}: wrote {len(written)} file(s)")
        for path in written:
            print(f"  {path}")
    return status


def _dossier(args: argparse.Namespace) -> int:
    from analysis.report.dossier import build_dossier

    result = build_dossier(args.run_dir, args.out, classes=args.classes or None, small=args.small,
                           device=args.device, max_clips=args.max_clips, checkpoint=args.checkpoint,
                           method=args.method, stage=args.stage, timeout=args.timeout, progress=not args.quiet,
                           kernels=args.kernels)
    print(f"{result.index}: {len(result.pages)} class page(s)")
    for name, reason in result.failed.items():
        print(f"  failed: {name}: {reason}", file=sys.stderr)
    return 1 if result.failed else 0


def _regions(args: argparse.Namespace) -> int:
    from analysis.report.region_profile import write_region_table

    out = write_region_table(args.run_dir, args.out, methods=args.methods, small=args.small, device=args.device,
                             max_clips=args.max_clips, checkpoint=args.checkpoint)
    print(f"{out}: region profile of {args.run_dir}")
    return 0


def _add_run_options(parser: argparse.ArgumentParser, small: str) -> None:
    """The options that say how a run is opened (``open_run``), shared by the commands that open one."""
    parser.add_argument("--small", action="store_true", help=small)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    parser.add_argument("--max-clips", type=int, default=None, help="at most this many clips per class")
    parser.add_argument("--checkpoint", default="auto", choices=("auto", "best", "last"),
                        help="auto: best.pt only when chosen on a held-out validation split, else last.pt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description="Analysis tools for tdrag runs.")
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

    dossier = commands.add_parser(
        "dossier",
        help="one HTML page per class of the run's dataset, plus DIR/index.html",
        description=(
            "Executes notebooks/dossier_class.ipynb once per class (papermill; a few kernels that each execute "
            "many pages, the run inspected once and its attributions made once) and exports each to HTML "
            "(nbconvert): the class's precision/recall/F1, its confusion row and column, its most confident "
            "correct and most confusing wrong clips with attention and an attribution (strips and animations), "
            "its mean attention, GRU trajectories against its nearest competitor, keyframe importance, "
            "agreement with the ground truth (synthetic data) and its facial-region profile. DIR/index.html: "
            "the run's summary, confusion matrix, per-class recall, class thumbnails and links, the facial-region "
            "heat table (DIR/region_profile.csv). DIR must be absent, empty or a previous dossier."
        ),
    )
    dossier.add_argument("run_dir", metavar="RUN_DIR", help="a trained run directory")
    dossier.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced only if a previous dossier)")
    dossier.add_argument("--classes", nargs="+", metavar="CLASS", help="class names (default: every class)")
    _add_run_options(dossier, "coarse, seconds-long settings (CI, first try)")
    dossier.add_argument("--method", default="integrated_gradients", help="the attribution method shown")
    dossier.add_argument("--stage", default=None, help="the attention stage each page animates (default: the deepest)")
    dossier.add_argument("--timeout", type=int, default=1200, help="seconds allowed per notebook cell")
    dossier.add_argument("--kernels", type=int, default=None, metavar="N",
                         help="class pages executed at once, one kernel each (default: one per CPU core, at most 4)")
    dossier.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    dossier.set_defaults(func=_dossier)

    regions = commands.add_parser(
        "regions",
        help="the facial-region profile of a run's test clips, per class, as CSV",
        description=(
            "For every class and map (each attention stage, each attribution method named), the share of the "
            "map's mass in each facial region (outside, face, brows, eyes, cheeks, nose, mouth, occluder, "
            "distractor), the region's share of the pixels and their ratio; on synthetic data the ground-truth "
            "masks too. Regions: the synthetic renderer's, or an approximate canonical template of aligned "
            "face crops on real data."
        ),
    )
    regions.add_argument("run_dir", metavar="RUN_DIR", help="a trained run directory")
    regions.add_argument("--out", required=True, metavar="FILE.csv", help="the CSV written")
    regions.add_argument("--methods", nargs="*", default=[], metavar="METHOD",
                         help="attribution methods to profile besides the attention stages (e.g. gradcam layercam)")
    _add_run_options(regions, "coarse attribution settings")
    regions.set_defaults(func=_regions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m analysis`` and the ``tdrag-report`` console script.

    ``tdrag-report RUN_DIR`` (no sub-command) is read as ``report RUN_DIR``.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt:  # also while parsing and importing, before a command runs
        print("interrupted", file=sys.stderr)
        quiet_teardown()
        return 130


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if first is not None and argv[first] not in ("report", "dossier", "regions"):
        argv.insert(first, "report")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"error: {error_message(err)}", file=sys.stderr)
        return 1
