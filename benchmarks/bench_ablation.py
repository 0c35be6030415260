"""The ablation table on the `medium` synthetic set: every TDRAG part against a plain r3d18, paired.

    python benchmarks/bench_ablation.py --out runs/ablation                 # 7 variants x 3 seeds (~75 min, 2 cores)
    python benchmarks/bench_ablation.py --threads 1 --variants tdrag,r3d18  # two of these side by side: a lane per core
    python benchmarks/bench_ablation.py --out runs/ablation --variants r3d18,tdrag --seeds 0
    python benchmarks/bench_ablation.py --config configs/synthetic_order.yaml --out runs/ablation_order
    python benchmarks/bench_ablation.py --out runs/designs --variants tdrag \\
        --extra model.attention.design=softmax --name softmax              # one design, for exploration

One data set (``configs/synthetic_medium.yaml``'s synth section, render seed 0) and its two caches
(redundancy and uniform keyframes) serve every run; each variant trains with the same training
seeds (0, 1, 2), so variants are compared *paired*: the same clips, the same fold, the same
initial RNG state. For every run the script reads the test WAR/UAR of the checkpoint chosen on
the held-out validation split (``data.val_fraction``), never on the test fold; the last epoch's are
kept too. It prints (and with ``--markdown`` writes) the table of mean +- std over seeds and the
paired differences (mean +- std of the per-seed differences) against r3d18 and against full
TDRAG, and draws a bar chart with error bars. Attention agreement with the synthetic ground truth
(AUROC of each stage's map over the crop and within the face, mass in the signal masks over
chance, pointing game, beside a fixed centre prior's) is scored for the variants with attention
by ``--score-attention``; the test WAR with the GRU branch switched off is read for the heads that
have one. Finished runs are reused, so a killed benchmark continues where it stopped, and lanes
that train disjoint variants can run side by side; a last call over all variants then only scores
and tabulates. The experiment itself is ``analysis.experiments`` (ablation, evaluation, summary,
attention, tables); this file is its command line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.experiments.ablation import VARIANTS, score_attention, train_runs  # noqa: E402
from analysis.experiments.data import CONFIG  # noqa: E402
from analysis.experiments.results import RunResult, results_json  # noqa: E402
from analysis.experiments.summary import paired_summary, table_json  # noqa: E402
from analysis.experiments.tables import ablation_markdown  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="folder for data, caches, runs, results.json")
    parser.add_argument("--config", default=str(CONFIG),
                        help="the recipe and its synthetic preset (default: configs/synthetic_medium.yaml)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    parser.add_argument("--clips", type=int, default=None, help="clips in the data set (default: the config's 600)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the config's)")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--name", default="", help="suffix for the runs' names (designs explored with --extra)")
    parser.add_argument("--score-attention", action="store_true", help="score attention against the ground truth")
    parser.add_argument("--figure", default=None, help="write the bar chart here (PNG)")
    parser.add_argument("--markdown", default=None, help="write the Markdown table here")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per training (default: torch's); CPU results are exact for a given count")
    return parser


def describe(r: RunResult) -> str:
    """One run's line on the console."""
    gru = f"; GRU off {r.gru_off_test_war:.3f}" if r.gru_off_test_war is not None else ""
    val = f"{r.val_war:.3f}" if r.val_war is not None else "–"
    last_val = f"{r.last_val_war:.3f}" if r.last_val_war is not None else "–"
    return (f"{r.variant} seed {r.seed}: test WAR {r.test_war:.3f} UAR {r.test_uar:.3f} (epoch {r.selected_epoch} by "
            f"{r.selection}, val {val}); last epoch test {r.last_test_war:.3f} val {last_val}{gru}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(args.out)
    results = []
    for result in train_runs(out, variants, seeds, args.name, args.extra, args.clips, args.epochs, args.workers,
                             args.config):
        print(describe(result), flush=True)
        results.append(result)
    if args.score_attention:
        results = score_attention(results)
    table = paired_summary(results)
    text = ablation_markdown(table)
    print(text)
    from tdrag.atomic import write_json

    write_json(out / f"results{'_' + args.name if args.name else ''}.json", results_json(results, table_json(table)))
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.figure:
        from analysis.experiments.figures import write_ablation_bars

        write_ablation_bars(table, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
