"""``tdrag cv``: the k-fold protocol (one run per fold, then summary.json and summary.md)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train the config on each fold into <train.run_dir>/fold_<k>, then write <train.run_dir>/summary.json
and summary.md with both aggregations, labelled: mean +- std of the per-fold WAR/UAR, and WAR/UAR
pooled over all folds' predictions (for the best and for the last epoch of each fold).
--resume skips finished folds and resumes an interrupted one.
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
    parser.add_argument("--config", required=True, help="YAML config")
    parser.add_argument("--folds", type=_folds, default=[1, 2, 3, 4, 5], help="comma-separated folds (default: 1,2,3,4,5)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--resume", action="store_true", help="skip finished folds, resume an interrupted one")
    parser.add_argument("--overwrite", action="store_true", help="retrain folds that already hold runs")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from tdrag.commands._common import ENGINE_ERRORS
    from tdrag.config import ConfigError, load_config
    from tdrag.distributed import env_info

    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"tdrag cv: error: {exc}", file=sys.stderr)
        return 2
    from tdrag.crossval import cross_validate

    try:
        summary = cross_validate(config, args.folds, resume=args.resume, overwrite=args.overwrite,
                                 progress=not args.no_progress)
    except ENGINE_ERRORS as exc:
        print(f"tdrag cv: error: {exc}", file=sys.stderr)
        return 1
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
