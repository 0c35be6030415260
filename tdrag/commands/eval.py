"""``tdrag eval``: re-evaluate a run's checkpoints and rewrite its predictions and report."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Evaluate RUN_DIR's checkpoints/last.pt and best.pt on the test split (and the validation split
when the run held one out) of the fold it was trained on, and rewrite RUN_DIR/predictions.csv
and RUN_DIR/report/. The config stored in the checkpoint decides the model, fold and cache.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="re-evaluate a run and rewrite its report", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `tdrag train`")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    parser.add_argument("--cache", default=None, help="frame cache to use instead of the run's data.cache")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tdrag.commands._common import print_run_summary
    from tdrag.train.evaluate import evaluate_run

    metrics = evaluate_run(args.run_dir, device=args.device, cache=args.cache, progress=not args.no_progress)
    print_run_summary(args.run_dir, metrics)
    return 0
