"""``tdrag demo``: the whole pipeline on built-in synthetic data, on the CPU, in a few minutes."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Render an easy synthetic DFEW-format set (OUT/data), prepare its frame cache (OUT/cache), train a
small TDRAG on it on the CPU (OUT/run), evaluate, and print where the report is. Settings come
from configs/synthetic_demo.yaml (override with --config or KEY=VALUE). A second call reuses what
is already there (only re-evaluating); --fresh rebuilds everything.
Figures: python -m analysis report OUT/run (what `make demo` runs next).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="synthesise, prepare, train and report on the CPU", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="runs/demo", help="demo folder (default: runs/demo)")
    parser.add_argument("--config", default=None, help="demo config (default: configs/synthetic_demo.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.set_defaults(intermixed="overrides")  # taken among the options too (tdrag.cli)
    parser.add_argument("--fresh", action="store_true", help="rebuild data, cache and run")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from tdrag.commands._common import print_run_summary
    from tdrag.runs.layout import RunPaths
    from tdrag.train.demo import run_demo

    started = time.perf_counter()
    run_dir = run_demo(args.out, config_path=args.config, overrides=args.overrides, fresh=args.fresh,
                       progress=not args.no_progress)
    metrics = RunPaths(run_dir).read_metrics() or {}
    print(f"demo finished in {time.perf_counter() - started:.0f} s: data {Path(args.out) / 'data'}, "
          f"cache {Path(args.out) / 'cache'}, run {run_dir}")
    print_run_summary(run_dir, metrics)
    print(f"figures: python -m analysis report {run_dir}")
    return 0
