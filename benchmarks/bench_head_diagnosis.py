"""Why a temporal head does or does not train: gradients, GRU gates and hidden states over epochs.

    python benchmarks/bench_head_diagnosis.py --out runs/ablation --variants tdrag,tdrag_no_gru --epochs 4
    python benchmarks/bench_head_diagnosis.py --out runs/ablation --variants tdrag \\
        --extra model.head.design=no_pooled_path --name plain

On the `medium` set and recipe of ``benchmarks/bench_ablation.py`` (same data folder, same
caches), each variant trains for ``--epochs`` epochs through ``tdrag.train.engine.train_one_epoch``.
Before the first epoch and after each one, on one fixed probe batch of training clips (training
mode, centre crop, no optimiser step), the script measures:

* **gradient norms per part**: the stem, each stage's trunk, the attention blocks, the GRU's
  input and recurrent weights, the classifier, the pooled path (when the head has one); the norm
  of the gradient of the loss with respect to each part's parameters, and its ratio to the
  parameters' norm (how fast one step moves the part);
* **the GRU's gates** (first layer, recomputed from its weights on the probe sequence): mean of
  the update gate z and the share of entries saturated (z < 0.05 or z > 0.95; r likewise), the
  candidate n's share beyond |0.95|;
* **the sequence the GRU reads and the states it writes**: mean and std of the pooled layer4
  features per step, the spread of the states across clips (std over the batch, averaged over
  units), how much the last state differs from the first, and the share of state entries
  beyond |0.95|;
* the training loss and accuracy of each epoch.

It prints one table per variant and writes ``diagnosis.json`` (``--json``). Every run is seeded
(``--seed``), so two variants see the same clips in the same order. The second command above
diagnoses the head without its pooled path (``model.head.design=no_pooled_path``: the classifier
reads the GRU's states alone). The measurements are ``analysis.experiments.head_diagnosis``; this file
is its command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.experiments.ablation import run_config, run_name  # noqa: E402
from analysis.experiments.data import CONFIG, prepare_data  # noqa: E402
from analysis.experiments.head_diagnosis import diagnose, diagnosis_markdown, format_row  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="bench_ablation's folder (data and caches)")
    parser.add_argument("--variants", default="tdrag,tdrag_no_gru")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", type=int, default=32, help="clips in the probe batch")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every run (section.field=value)")
    parser.add_argument("--name", default="", help="suffix of the variants' names (designs explored with --extra)")
    parser.add_argument("--json", default=None, help="write every epoch's figures here")
    parser.add_argument("--markdown", default=None, help="write the summary table here")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    return parser


def main(argv=None) -> int:
    import torch

    from tdrag.config import load_config

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    base = load_config(CONFIG)
    out = Path(args.out)
    paths = prepare_data(out, base, None, 2)
    results = []
    for variant in args.variants.split(","):
        config = run_config(base, variant, args.seed, paths, out / "diagnosis", args.extra)
        name, rows = run_name(variant, args.name), []
        for row in diagnose(config, args.epochs, args.probe):
            print(format_row(name, row), flush=True)
            rows.append(row)
        results.append((name, rows))
    if args.json:
        data = [{"variant": name, "epochs": [row.to_json() for row in rows]} for name, rows in results]
        Path(args.json).write_text(json.dumps(data, indent=1))
    text = diagnosis_markdown(results)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
