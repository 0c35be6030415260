"""The ablation table on the `medium` synthetic set: every TDRAG part against a plain r3d18, paired.

    python benchmarks/bench_ablation.py --out runs/ablation                 # 6 variants x 3 seeds (~1 h, 2 cores)
    python benchmarks/bench_ablation.py --out runs/ablation --variants r3d18,tdrag --seeds 0
    python benchmarks/bench_ablation.py --out runs/designs --variants tdrag \\
        --extra attention_mask=softmax --name softmax                      # one design, for exploration

One data set (``configs/synthetic_medium.yaml``'s synth section, render seed 0) and its two caches
(redundancy and uniform keyframes) serve every run; each variant trains with the same training
seeds (0, 1, 2), so variants are compared *paired*: the same clips, the same fold, the same
initial RNG state. For every run the script reads the test WAR/UAR of the checkpoint chosen on
the held-out validation split (``data.val_fraction``), never on the test fold; the last epoch's are
kept too. It prints (and with ``--markdown`` writes) the table of mean +- std over seeds and the
paired differences (mean +- std of the per-seed differences) against r3d18 and against full
TDRAG, and draws a bar chart with error bars. Attention agreement with the synthetic ground truth
(mass in the signal masks over chance, pointing game) is scored for the variants with attention
by ``--score-attention`` (uses the analysis package). Finished runs are reused, so a killed
benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tdrag.config import load_config, replace  # noqa: E402

CONFIG = REPO / "configs" / "synthetic_medium.yaml"

#: variant -> (model name, keyframe method)
VARIANTS: dict[str, tuple[str, str]] = {
    "r3d18": ("r3d18", "uniform"),
    "tdrag": ("tdrag", "redundancy"),
    "tdrag_no_attention": ("tdrag_no_attention", "redundancy"),
    "tdrag_no_gru": ("tdrag_no_gru", "redundancy"),
    "tdrag_uniform": ("tdrag", "uniform"),
    "r3d18_redundancy": ("r3d18", "redundancy"),
}


def prepare_data(out: Path, config, clips: int | None, workers: int) -> dict[str, Path]:
    """The medium data set and its two caches under ``out`` (reused when present)."""
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root, load_meta

    s = config.synth
    clips = clips or s.clips
    root = out / "data"
    if not (is_synthetic_root(root) and load_meta(root)["num_clips"] == clips and load_meta(root)["preset"] == s.preset):
        generate_dataset(root, clips=clips, preset=s.preset, seed=s.render_seed, size=s.render_size, workers=workers,
                         progress=True)
    caches = {}
    for method in ("redundancy", "uniform"):
        caches[method] = prepare_cache(root, out / f"cache_{method}", frames=config.data.frames, size=config.data.size,
                                       keyframes=method, workers=workers, overwrite=True, progress=True)
    return {"root": root, **caches}


def run_config(base, variant: str, seed: int, paths: dict[str, Path], run_dir: Path, extra: list[str], epochs: int | None):
    model, method = VARIANTS[variant]
    config = replace(base, data={"root": str(paths["root"]), "cache": str(paths[method]), "keyframes": method},
                     model={"name": model}, train={"run_dir": str(run_dir), "seed": int(seed)})
    if epochs:
        config = replace(config, train={"epochs": int(epochs)})
    if extra:
        from tdrag.config import apply_overrides

        config = apply_overrides(config, extra)
    return config


def train_all(out: Path, variants: list[str], seeds: list[int], name_suffix: str, extra: list[str], clips, epochs,
              workers: int) -> list[dict]:
    from tdrag.train.fit import fit

    base = load_config(CONFIG)
    paths = prepare_data(out, base, clips, workers)
    results = []
    for seed in seeds:  # seeds outermost: a partial run still holds paired results
        for variant in variants:
            name = variant + (f"_{name_suffix}" if name_suffix else "")
            run_dir = out / "runs" / name / f"seed_{seed}"
            config = run_config(base, variant, seed, paths, run_dir, extra, epochs)
            metrics_path = run_dir / "report" / "metrics.json"
            started = time.perf_counter()
            if not (metrics_path.is_file() and _finished(run_dir, config.train.epochs)):
                fit(config, resume=True, overwrite=False, progress=False)
            metrics = json.loads(metrics_path.read_text())
            chosen = metrics["best"] or metrics["last"]
            results.append({
                "variant": name, "seed": seed, "run_dir": str(run_dir),
                "test_war": chosen["test"]["war"], "test_uar": chosen["test"]["uar"],
                "selected_epoch": chosen["epoch"], "selection": metrics["selection"]["split"],
                "last_test_war": metrics["last"]["test"]["war"], "last_test_uar": metrics["last"]["test"]["uar"],
                "seconds": round(time.perf_counter() - started, 1),
            })
            print(f"{name} seed {seed}: test WAR {results[-1]['test_war']:.3f} UAR {results[-1]['test_uar']:.3f} "
                  f"(epoch {chosen['epoch']} by {metrics['selection']['split']}; last {results[-1]['last_test_war']:.3f})",
                  flush=True)
    return results


def _finished(run_dir: Path, epochs: int) -> bool:
    from tdrag.runs.checkpoints import load_checkpoint

    last = run_dir / "checkpoints" / "last.pt"
    return last.is_file() and int(load_checkpoint(last)["epoch"]) >= epochs


def attention_agreement(run_dir: str | Path, batch: int = 16) -> dict[str, dict[str, float]]:
    """Attention against the synthetic ground truth on a run's test split, per stage.

    ``auroc``: the map's AUROC as a detector of the signal pixels, per keyframe with a non-empty
    mask, averaged (0.5 = chance; ``analysis.internals.ground_truth.auroc_in_mask``); ``mass``: mean share of the map's mass inside the signal masks; ``chance``: the masks' mean
    area fraction (what a uniform map gets); ``ratio`` = mass / chance; ``pointing_game``: share
    of frames (with a non-empty mask) whose attention maximum lies inside the mask. The model is
    the run's default analysis checkpoint (held-out selection, never the test fold).
    """
    import torch

    from analysis.attribution.faithfulness import pointing_game
    from analysis.internals.ground_truth import auroc_in_mask, ground_truth_masks, mass_in_mask
    from tdrag.data.augment import eval_transform
    from tdrag.data.cache import open_cache
    from tdrag.models.attention import upsample_attention
    from tdrag.models.registry import load_model

    model, config = load_model(run_dir)
    cache = open_cache(config.data.cache)
    rows = cache.rows(config.data.fold, "test")
    scores: dict[str, dict[str, list]] = {}
    chance = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            x = eval_transform(torch.from_numpy(np.array(cache.frames[part])), crop=config.data.crop)
            seen = model.inspect(x)
            masks = ground_truth_masks(cache, part, config.data.root, config.data.crop)
            chance.append(masks.flatten(1).float().mean(1))
            for stage, m in seen.attention.items():
                maps = upsample_attention(m, masks.shape[1:])
                entry = scores.setdefault(stage, {"auroc": [], "mass": [], "pointing_game": []})
                entry["auroc"].append(auroc_in_mask(maps, masks))
                entry["mass"].append(mass_in_mask(maps, masks))
                entry["pointing_game"].append(pointing_game(maps, masks))
    area = float(torch.cat(chance).mean())
    out = {}
    for stage, entry in scores.items():
        mass = float(torch.nanmean(torch.cat(entry["mass"]).double()))
        out[stage] = {"auroc": float(torch.nanmean(torch.cat(entry["auroc"]).double())),
                      "mass": mass, "chance": area, "ratio": mass / area,
                      "pointing_game": float(torch.nanmean(torch.cat(entry["pointing_game"]).double()))}
    return out


def score_attention(results: list[dict]) -> None:
    """Add the attention agreement of each variant with attention to its result (in place)."""
    for r in results:
        if "no_attention" in r["variant"] or r["variant"].startswith("r3d18"):
            continue
        r["attention"] = attention_agreement(r["run_dir"])


def summarise(results: list[dict], reference: str = "r3d18", full: str = "tdrag") -> dict:
    """Mean +- std per variant and paired differences against ``reference`` and ``full``."""
    by = {}
    for r in results:
        by.setdefault(r["variant"], {})[r["seed"]] = r
    table = {}
    for name, runs in by.items():
        row = {"seeds": sorted(runs)}
        for key in ("test_war", "test_uar"):
            values = np.array([runs[s][key] for s in sorted(runs)], dtype=float)
            row[key] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
            for other in (reference, full):
                if other in by and other != name:
                    common = sorted(set(runs) & set(by[other]))
                    diffs = np.array([runs[s][key] - by[other][s][key] for s in common], dtype=float)
                    if len(diffs):
                        row[f"{key}_minus_{other}"] = (float(diffs.mean()),
                                                       float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0, len(diffs))
        att = [runs[s].get("attention") for s in sorted(runs) if runs[s].get("attention")]
        if att:
            row["attention"] = {stage: {k: (float(np.mean([a[stage][k] for a in att])),
                                            float(np.std([a[stage][k] for a in att], ddof=1)) if len(att) > 1 else 0.0)
                                        for k in att[0][stage]}
                                for stage in att[0]}
        table[name] = row
    return table


def markdown(table: dict, reference: str = "r3d18", full: str = "tdrag") -> str:
    def pm(value) -> str:
        return "–" if value is None else f"{100 * value[0]:.1f} ± {100 * value[1]:.1f}"

    lines = [f"| variant | seeds | test WAR (%) | test UAR (%) | WAR − {reference} | UAR − {reference} | WAR − {full} | UAR − {full} |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in table.items():
        lines.append(f"| {name} | {len(row['seeds'])} | {pm(row['test_war'])} | {pm(row['test_uar'])} | "
                     f"{pm(row.get(f'test_war_minus_{reference}'))} | {pm(row.get(f'test_uar_minus_{reference}'))} | "
                     f"{pm(row.get(f'test_war_minus_{full}'))} | {pm(row.get(f'test_uar_minus_{full}'))} |")
    att_rows = [(n, r["attention"]) for n, r in table.items() if "attention" in r]
    if att_rows:
        lines += ["", "| variant | stage | mass in mask / chance | pointing game |", "|---|---|---:|---:|"]
        for name, att in att_rows:
            for stage, v in att.items():
                lines.append(f"| {name} | {stage} | {v['ratio'][0]:.2f} ± {v['ratio'][1]:.2f} | "
                             f"{v['pointing_game'][0]:.2f} ± {v['pointing_game'][1]:.2f} |")
    return "\n".join(lines) + "\n"


def bar_chart(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6), dpi=120)
    for k, (key, label) in enumerate((("test_war", "WAR"), ("test_uar", "UAR"))):
        means = [100 * table[n][key][0] for n in names]
        stds = [100 * table[n][key][1] for n in names]
        ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("test (%)  mean ± std over seeds")
    ax.set_title("Ablation on the medium synthetic set (paired seeds)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="folder for data, caches, runs, results.json")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds (default 0,1,2)")
    parser.add_argument("--clips", type=int, default=None, help="clips in the data set (default: the config's 600)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the config's 12)")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--name", default="", help="suffix for the runs' names (designs explored with --extra)")
    parser.add_argument("--score-attention", action="store_true", help="score attention against the ground truth")
    parser.add_argument("--figure", default=None, help="write the bar chart here (PNG)")
    parser.add_argument("--markdown", default=None, help="write the Markdown table here")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(args.out)
    results = train_all(out, variants, seeds, args.name, args.extra, args.clips, args.epochs, args.workers)
    if args.score_attention:
        score_attention(results)
    table = summarise(results)
    text = markdown(table)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"_{args.name}" if args.name else ""
    (out / f"results{tag}.json").write_text(json.dumps({"results": results, "table": table}, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.figure:
        bar_chart(table, Path(args.figure))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
