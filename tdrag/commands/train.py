"""``tdrag train``: train one model on one fold of a frame cache (DDP under torchrun)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Train the model of a config file on one fold of its frame cache and write the run directory
(train.run_dir): config.yaml, log.csv, checkpoints/last.pt and best.pt, predictions.csv, report/.
Overrides are section.field=value (or field=value when unique), e.g. fold=2 train.lr=0.005.

Resume a run that was killed (at any point) with --resume; its config is in RUN_DIR/config.yaml:
  tdrag train --config runs/x/config.yaml --resume
Several GPUs: torchrun --nproc_per_node N -m tdrag train --config FILE
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on one fold", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from tdrag.commands._common import add_run_options

    add_run_options(parser, "YAML config (configs/*.yaml or a run's config.yaml)", "the run in train.run_dir")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tdrag.commands._common import print_run_summary
    from tdrag.config import load_config
    from tdrag.distributed import env_info
    from tdrag.train.fit import fit

    config = load_config(args.config, args.overrides)
    result = fit(config, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    if env_info().is_main:
        print_run_summary(result.run_dir, result.metrics)
    return 0
