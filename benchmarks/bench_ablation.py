"""The ablation table on the `medium` synthetic set: every TDRAG part against a plain r3d18, paired.

    python benchmarks/bench_ablation.py --out runs/ablation                 # 7 variants x 3 seeds (~75 min, 2 cores)
    python benchmarks/bench_ablation.py --threads 1 --variants tdrag,r3d18  # two of these side by side: a lane per core
    python benchmarks/bench_ablation.py --out runs/ablation --variants r3d18,tdrag --seeds 0
    python benchmarks/bench_ablation.py --config configs/synthetic_order.yaml --out runs/ablation_order
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
(AUROC of each stage's map over the crop and within the face, mass in the signal masks over
chance, pointing game, beside a fixed centre prior's) is scored for the variants with attention
by ``--score-attention`` (uses the analysis package); the test WAR with the GRU branch switched
off is read for the heads that have one. Finished runs are reused, so a killed benchmark
continues where it stopped, and lanes that train disjoint variants can run side by side; a last
call over all variants then only scores and tabulates.
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
from tdrag.runs.layout import RunPaths  # noqa: E402

CONFIG = REPO / "configs" / "synthetic_medium.yaml"

#: variant -> (model name, keyframe method)
VARIANTS: dict[str, tuple[str, str]] = {
    "r3d18": ("r3d18", "uniform"),
    "tdrag": ("tdrag", "redundancy"),
    "tdrag_no_attention": ("tdrag_no_attention", "redundancy"),
    "tdrag_no_gru": ("tdrag_no_gru", "redundancy"),
    "tdrag_uniform": ("tdrag", "uniform"),
    "r3d18_redundancy": ("r3d18", "redundancy"),
    # TDRAG's backbone (temporal strides) with neither attention nor GRU: against r3d18_redundancy
    # it isolates the strides, against tdrag_no_gru the attention.
    "tdrag_trunk": ("tdrag_trunk", "redundancy"),
}


def prepare_data(out: Path, config, clips: int | None, workers: int, methods=("redundancy", "uniform"),
                 seed: int | None = None) -> dict[str, Path]:
    """The medium data set (render ``seed``, default the config's) and one cache per keyframe
    method under ``out`` (reused when present)."""
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root, load_meta

    s = config.synth
    clips = clips or s.clips
    seed = s.render_seed if seed is None else int(seed)
    root = out / "data"
    meta = load_meta(root) if is_synthetic_root(root) else {}
    if any(meta.get(k) != v for k, v in {"num_clips": clips, "preset": s.preset, "seed": seed}.items()):
        generate_dataset(root, clips=clips, preset=s.preset, seed=seed, size=s.render_size, workers=workers,
                         progress=True)
    paths = {"root": root}
    for method in methods:
        paths[method] = cache_for(out, root, config, method, workers)
    return paths


def cache_for(out: Path, root: Path, config, method: str, workers: int, name: str | None = None) -> Path:
    """The frame cache ``out/cache_<name>`` (default name: ``method``) of ``root`` with keyframe
    ``method`` and the config's T and size (built once; a no-op when current)."""
    from tdrag.data.prepare import prepare_cache

    return prepare_cache(root, out / f"cache_{name or method}", frames=config.data.frames, size=config.data.size,
                         keyframes=method, workers=workers, overwrite=True, progress=True)


def ensure_cache(paths: dict, config, base, workers: int) -> Path:
    """The cache of ``paths["root"]`` for the config's keyframe method and T, built on demand into
    ``paths`` (keyed by the method, or ``<method>_t<T>`` for a T other than ``base``'s)."""
    method, frames = config.data.keyframes, config.data.frames
    key = method if frames == base.data.frames else f"{method}_t{frames}"
    if key not in paths:
        root = Path(paths["root"])
        paths[key] = cache_for(root.parent, root, config, method, workers, name=key)
    return paths[key]


def run_config(base, variant: str, seed: int, paths: dict[str, Path], run_dir: Path, extra: list[str], epochs: int | None,
               workers: int = 1):
    """The config of one run: the variant's model and keyframes, then ``extra`` overrides (which may
    change the keyframe method or T: their cache is made on demand)."""
    from tdrag.config import apply_overrides

    model, method = VARIANTS[variant]
    config = replace(base, data={"root": str(paths["root"]), "keyframes": method},
                     model={"name": model}, train={"run_dir": str(run_dir), "seed": int(seed)})
    if epochs:
        config = replace(config, train={"epochs": int(epochs)})
    if extra:
        config = apply_overrides(config, extra)
    return replace(config, data={"cache": str(ensure_cache(paths, config, base, workers))})


def train_all(out: Path, variants: list[str], seeds: list[int], name_suffix: str, extra: list[str], clips, epochs,
              workers: int, config_path: Path = CONFIG) -> list[dict]:
    from tdrag.train.fit import fit

    base = load_config(config_path)
    paths = prepare_data(out, base, clips, workers)
    results = []
    for seed in seeds:  # seeds outermost: a partial run still holds paired results
        for variant in variants:
            name = variant + (f"_{name_suffix}" if name_suffix else "")
            run_dir = out / "runs" / name / f"seed_{seed}"
            config = run_config(base, variant, seed, paths, run_dir, extra, epochs, workers)
            started = time.perf_counter()
            if not RunPaths(run_dir).finished(config.train.epochs):
                fit(config, resume=True, overwrite=False, progress=False)
            results.append(run_result(name, seed, run_dir, round(time.perf_counter() - started, 1)))
            r = results[-1]
            print(f"{name} seed {seed}: test WAR {r['test_war']:.3f} UAR {r['test_uar']:.3f} (epoch "
                  f"{r['selected_epoch']} by {r['selection']}, val {r['val_war']:.3f}); last epoch test "
                  f"{r['last_test_war']:.3f} val {r['last_val_war']:.3f}"
                  + (f"; GRU off {r['gru_off_test_war']:.3f}" if r.get("gru_off_test_war") is not None else ""),
                  flush=True)
    return results


def run_result(name: str, seed: int, run_dir: Path, seconds: float) -> dict:
    """One run's figures: test and validation WAR/UAR of the selected and of the last epoch, the
    training loss of the first and last epochs, and the GRU-off test WAR (residual GRU heads)."""
    import csv

    paths = RunPaths(run_dir)
    metrics = json.loads(paths.metrics.read_text())
    chosen = metrics["best"] or metrics["last"]
    last = metrics["last"]
    log = list(csv.DictReader(paths.log.open()))
    result = {
        "variant": name, "seed": seed, "run_dir": str(run_dir),
        "test_war": chosen["test"]["war"], "test_uar": chosen["test"]["uar"],
        "selected_epoch": chosen["epoch"], "selection": metrics["selection"]["split"],
        "val_war": (chosen.get("val") or {}).get("war"),
        "last_test_war": last["test"]["war"], "last_test_uar": last["test"]["uar"],
        "last_val_war": (last.get("val") or {}).get("war"),
        "first_train_loss": float(log[0]["train_loss"]), "last_train_loss": float(log[-1]["train_loss"]),
        "last_train_acc": float(log[-1]["train_acc"]),
        "seconds": seconds,
    }
    result.update(gru_off_wars(run_dir))
    return result


def gru_off_wars(run_dir: Path) -> dict:
    """Test WAR of the selected and the last checkpoint with the GRU branch switched off, and the
    share of the last checkpoint's test predictions that switching it off changes (a finer measure
    of what the GRU does than the WAR, whose gains and losses can cancel); empty for models without
    a residual GRU head."""
    out = {}
    for key, which in (("gru_off_test_war", "auto"), ("last_gru_off_test_war", "last")):
        figures = checkpoint_figures(run_dir, which)
        if "gru_off_war" not in figures:
            return {}
        out[key] = figures["gru_off_war"]
        if which == "last":
            out["last_gru_changed"] = figures["gru_changed"]
    return out


def checkpoint_figures(run_dir: Path, which: str, cache=None, rows=None) -> dict:
    """WAR and UAR of a run's ``which`` checkpoint ("auto" | "last") on ``rows`` of ``cache``
    (default: the run's own cache and test fold), and the confusion counts (``confusion``, true
    class by row, in label order); for a residual GRU head also the WAR and confusion with the GRU
    branch switched off (``gru_off_war``, ``gru_off_confusion``) and the share of predictions that
    switching changes (``gru_changed``)."""
    import torch

    from tdrag.data.loader import make_loader
    from tdrag.metrics import confusion_matrix, uar, war
    from tdrag.models.gru_head import gru_branch_off
    from tdrag.models.registry import load_model
    from tdrag.train.data import check_cache, load_run_data
    from tdrag.train.engine import evaluate

    model, config = load_model(run_dir, which=which)
    if cache is None:
        data = load_run_data(config)
        cache, rows = data.cache, data.test_rows
    else:
        check_cache(cache, config)
    loader = make_loader(cache, rows, config.train.batch_size, shuffle=False)
    classes = config.model.num_classes

    def predict():
        with torch.no_grad():
            preds = evaluate(model, loader, "cpu", config.data.crop, amp=False, channels_last=False)
        return preds.labels, preds.probabilities.argmax(1)

    labels, kept = predict()
    out = {"war": float(war(labels, kept, classes)), "uar": float(uar(labels, kept, classes)),
           "confusion": confusion_matrix(labels, kept, classes).tolist()}
    if getattr(getattr(model, "head", None), "residual", False):
        with gru_branch_off(model):
            _, off = predict()
        out.update(gru_off_war=float(war(labels, off, classes)), gru_changed=float(np.mean(kept != off)),
                   gru_off_confusion=confusion_matrix(labels, off, classes).tolist())
    return out


def attention_agreement(run_dir: str | Path, batch: int = 16, data_root: str | Path | None = None
                        ) -> dict[str, dict[str, float]]:
    """Attention against the synthetic ground truth on a run's test split, per stage.

    ``auroc``: the map's AUROC as a detector of the signal pixels, per keyframe with a non-empty
    mask, averaged (0.5 = chance; ``analysis.internals.ground_truth.auroc_in_mask``);
    ``auroc_face``: the same among the face's pixels only (the signal parts against the rest of
    the face; NaN for a set without region maps); ``mass``: mean share of the map's mass inside
    the signal masks; ``chance``: the masks' mean area fraction (what a uniform map gets);
    ``ratio`` = mass / chance; ``pointing_game``: share of frames (with a non-empty mask) whose
    attention maximum lies inside the mask. The entry ``centre_prior`` scores
    :func:`centre_prior` the same way. The model is the run's default analysis checkpoint
    (held-out selection, never the test fold); ``data_root`` replaces the run's data root (the
    masks and region maps are read there).
    """
    import torch

    from analysis.attribution.faithfulness import pointing_game
    from analysis.internals.ground_truth import CENTRE_PRIOR, agreement_with_truth, ground_truth_masks
    from analysis.internals.regions import face_pixels, has_region_maps, region_label_maps
    from tdrag.data.augment import eval_transform
    from tdrag.data.cache import open_cache
    from tdrag.models.attention import upsample_attention
    from tdrag.models.registry import load_model

    model, config = load_model(run_dir)
    root = Path(data_root or config.data.root)
    cache = open_cache(config.data.cache)
    rows = cache.rows(config.data.fold, "test")
    scores: dict[str, dict[str, list]] = {}
    chance = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            x = eval_transform(torch.from_numpy(np.array(cache.frames[part])), crop=config.data.crop)
            seen = model.inspect(x)
            masks = ground_truth_masks(cache, part, root, config.data.crop)
            face = face_pixels(region_label_maps(cache, part, root, config.data.crop)) if has_region_maps(root) else None
            chance.append(masks.flatten(1).float().mean(1))
            maps = {stage: upsample_attention(m, masks.shape[1:]) for stage, m in seen.attention.items()}
            for stage, entry in agreement_with_truth(maps, masks, face, {"pointing_game": pointing_game}).items():
                for key, values in entry.items():
                    scores.setdefault("centre_prior" if stage == CENTRE_PRIOR else stage, {}).setdefault(
                        key, []).append(values)
    area = float(torch.cat(chance).mean())
    out = {}
    for stage, entry in scores.items():
        mean = {("mass" if k == "mass_in_mask" else k): float(torch.nanmean(torch.cat(v).double()))
                for k, v in entry.items()}
        out[stage] = {**mean, "chance": area, "ratio": mean["mass"] / area}
    return out


def score_attention(results: list[dict]) -> None:
    """Add the attention agreement of each run whose model has attention to its result (in place)."""
    from tdrag.runs.checkpoints import load_checkpoint, select_checkpoint

    for r in results:
        state = load_checkpoint(select_checkpoint(r["run_dir"]).path)
        if any(".logits." in k for k in state["model"]):  # the attention blocks' logits convs
            r["attention"] = attention_agreement(r["run_dir"])


#: Per-run figures summarised as mean +- std over seeds.
FIGURES = ("test_war", "test_uar", "last_test_war", "last_test_uar", "val_war", "last_val_war", "first_train_loss",
           "last_train_loss", "gru_off_test_war", "last_gru_off_test_war", "last_gru_changed")
#: Figures also compared paired (per seed) against the reference and full TDRAG.
PAIRED = ("test_war", "test_uar", "last_test_war", "last_test_uar", "val_war", "last_val_war")


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def summarise(results: list[dict], reference: str = "r3d18", full: str = "tdrag") -> dict:
    """Mean +- std per variant and paired differences against ``reference`` and ``full``."""
    by = {}
    for r in results:
        by.setdefault(r["variant"], {})[r["seed"]] = r
    table = {}
    for name, runs in by.items():
        seeds = sorted(runs)
        row = {"seeds": seeds}
        for key in FIGURES:
            values = [runs[s].get(key) for s in seeds]
            if values and all(v is not None for v in values):
                row[key] = _mean_std(values)
        for key in PAIRED:
            for other in (reference, full):
                if other in by and other != name and key in row:
                    common = [s for s in seeds if s in by[other] and by[other][s].get(key) is not None]
                    if common:
                        row[f"{key}_minus_{other}"] = (*_mean_std([runs[s][key] - by[other][s][key] for s in common]),
                                                       len(common))
        att = [runs[s].get("attention") for s in seeds if runs[s].get("attention")]
        if att:
            row["attention"] = {stage: {k: _mean_std([a[stage][k] for a in att]) for k in att[0][stage]}
                                for stage in att[0]}
        table[name] = row
    return table


def markdown(table: dict, reference: str = "r3d18", full: str = "tdrag") -> str:
    def pm(value) -> str:
        return "–" if value is None else f"{100 * value[0]:.1f} ± {100 * value[1]:.1f}"

    lines = [f"| variant | seeds | test WAR (%) selected | last epoch | test UAR (%) selected | last epoch | "
             f"WAR − {reference} selected | last epoch | WAR − {full} selected | last epoch | val WAR (%) last epoch | "
             "GRU off: test WAR (%) selected | last epoch | test predictions the GRU changes (%), last epoch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in table.items():
        g = row.get
        lines.append(f"| {name} | {len(row['seeds'])} | {pm(g('test_war'))} | {pm(g('last_test_war'))} | "
                     f"{pm(g('test_uar'))} | {pm(g('last_test_uar'))} | "
                     f"{pm(g(f'test_war_minus_{reference}'))} | {pm(g(f'last_test_war_minus_{reference}'))} | "
                     f"{pm(g(f'test_war_minus_{full}'))} | {pm(g(f'last_test_war_minus_{full}'))} | "
                     f"{pm(g('last_val_war'))} | {pm(g('gru_off_test_war'))} | {pm(g('last_gru_off_test_war'))} | "
                     f"{pm(g('last_gru_changed'))} |")
    lines += ["", "| variant | training loss, first epoch | last epoch |", "|---|---:|---:|"]
    for name, row in table.items():
        if "first_train_loss" in row:
            (a, sa), (b, sb) = row["first_train_loss"], row["last_train_loss"]
            lines.append(f"| {name} | {a:.2f} ± {sa:.2f} | {b:.2f} ± {sb:.2f} |")
    att_rows = [(n, r["attention"]) for n, r in table.items() if "attention" in r]
    if att_rows:
        lines += ["", "| variant | stage | AUROC | AUROC within the face | mass in mask / chance | pointing game |",
                  "|---|---|---:|---:|---:|---:|"]
        for name, att in att_rows:
            for stage, v in att.items():
                lines.append(f"| {name} | {stage} | {v['auroc'][0]:.2f} ± {v['auroc'][1]:.2f} | "
                             f"{v['auroc_face'][0]:.2f} ± {v['auroc_face'][1]:.2f} | "
                             f"{v['ratio'][0]:.2f} ± {v['ratio'][1]:.2f} | "
                             f"{v['pointing_game'][0]:.2f} ± {v['pointing_game'][1]:.2f} |")
    return "\n".join(lines) + "\n"


def bar_chart(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(table)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6), dpi=120)
    for k, (key, label) in enumerate((("test_war", "WAR, epoch chosen on validation"), ("last_test_war", "WAR, last epoch"))):
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
    results = train_all(out, variants, seeds, args.name, args.extra, args.clips, args.epochs, args.workers,
                        Path(args.config))
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
