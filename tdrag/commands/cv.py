"""``tdrag cv``: the k-fold protocol (one run per fold, then summary.json and summary.md)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train the config on each fold into <train.run_dir>/fold_<k>, then write <train.run_dir>/summary.json
and summary.md with both aggregations, labelled: mean +- std of the per-fold WAR/UAR, and WAR/UAR
pooled over all folds' predictions (for the best and for the last epoch of each fold).
--folds defaults to every fold of the cache (DFEW and MAFW: 1..5; FERV39k: its one split). Every
fold is checked against the cache before the first one trains. --resume skips finished folds and
resumes an interrupted one.
"""


def _folds(text: str) -> list[int]:
    try:
        folds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--folds: expected comma-separated fold numbers, got {text!r}") from None
    if not folds or len(set(folds)) != len(folds):
        raise argparse.ArgumentTypeError(f"--folds: expected distinct fold numbers, got {text!r}")
    return folds


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cv", help="k-fold protocol: one run per fold plus a summary", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from tdrag.commands._common import add_run_options

    parser.add_argument("--folds", type=_folds, default=None,
                        help="comma-separated folds (default: every fold of the cache)")
    add_run_options(parser, "YAML config", "each fold's run (finished folds are skipped)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tdrag.config import load_config
    from tdrag.distributed import env_info
    from tdrag.train.crossval import cross_validate

    config = load_config(args.config, args.overrides)
    summary = cross_validate(config, args.folds, resume=args.resume, overwrite=args.overwrite,
                             progress=not args.no_progress)
    if env_info().is_main:
        base = Path(config.train.run_dir)
        for block in (summary, summary["last_epoch"]):
            ms, pooled = block["mean_std"], block["pooled"]
            print(f"{block['label']}:")
            print(f"  mean +- std over folds: WAR {100 * ms['war']['mean']:.2f} +- {100 * ms['war']['std']:.2f}  "
                  f"UAR {100 * ms['uar']['mean']:.2f} +- {100 * ms['uar']['std']:.2f}")
            print(f"  pooled predictions:     WAR {100 * pooled['war']:.2f}  UAR {100 * pooled['uar']:.2f}")
        print(f"summary: {base / 'summary.md'} and {base / 'summary.json'}")
    return 0
