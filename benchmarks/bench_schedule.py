"""How long the `medium` benchmark must train: r3d18's validation and test curves per schedule length.

    python benchmarks/bench_schedule.py --out runs/ablation --epochs 12,20,30,40 --figure schedule.png

Trains the ``r3d18`` baseline of ``benchmarks/bench_ablation.py`` (same data, caches and recipe,
``configs/synthetic_medium.yaml``) once per schedule length (a cosine schedule is a function of its
length, so each length is its own run) and plots, per length, the validation and test WAR of every
epoch. The schedule chosen for the benchmark is the shortest after which a longer one no longer
raises the last epoch's WAR: the baseline has levelled off, so a comparison with it is not a
comparison of how fast two models learn. Finished runs are reused.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_ablation  # noqa: E402

from tdrag.runs.layout import RunPaths  # noqa: E402


def curves(run_dir: Path) -> dict[str, list[float]]:
    """The run's per-epoch validation and test WAR (from its epoch log)."""
    rows = list(csv.DictReader(RunPaths(run_dir).log.open()))
    return {"epoch": [int(r["epoch"]) for r in rows], "val": [float(r["val_war"]) for r in rows],
            "test": [float(r["test_war"]) for r in rows]}


def plot(runs: dict[int, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=120, sharey=True)
    for length, c in sorted(runs.items()):
        for ax, key in zip(axes, ("val", "test")):
            ax.plot(c["epoch"], c[key], marker=".", label=f"{length} epochs")
    for ax, title in zip(axes, ("validation WAR (96 held-out training clips)", "test WAR (120 clips)")):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("WAR")
    axes[1].legend(title="cosine schedule")
    fig.suptitle("r3d18 on medium: one cosine schedule per length")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="bench_ablation's folder (data, caches, runs)")
    parser.add_argument("--epochs", default="12,20,30,40", help="schedule lengths to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default=None, help="write the curves here (PNG)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    runs = {}
    for length in (int(e) for e in args.epochs.split(",") if e):
        result = bench_ablation.train_all(Path(args.out), ["r3d18"], [args.seed], f"schedule_e{length}", [], None,
                                          length, args.workers)[0]
        runs[length] = curves(Path(result["run_dir"]))
    print("| schedule (epochs) | last-epoch val WAR | last-epoch test WAR | best val WAR (epoch) |")
    print("|---:|---:|---:|---:|")
    for length, c in sorted(runs.items()):
        best = max(range(len(c["val"])), key=lambda i: c["val"][i])
        print(f"| {length} | {c['val'][-1]:.3f} | {c['test'][-1]:.3f} | {c['val'][best]:.3f} ({c['epoch'][best]}) |")
    if args.figure:
        plot(runs, Path(args.figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
