"""Faithfulness and speed of the attribution toolkit on a trained run (the demo by default).

Measures, on the run's test split of the synthetic set (ground-truth masks from the generator):

1. Agreement with the ground-truth masks: the AUROC of each map as a detector of the signal pixels
   (per keyframe with a non-empty mask, averaged; 0.5 = chance), the pointing game and relevance
   mass, for the model's spatial attention (per stage, ``model.inspect``), the CAM family
   (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM at layer4 and layer3), saliency and uniform random
   maps (the chance level), targets = true labels, ``--clips`` test clips.
2. Cascading model-parameter randomisation (head first, down to the stem): mean Spearman rank
   correlation with the original map, for Grad-CAM (layer4) and saliency (``--heavy-clips``).
3. Integrated Gradients' completeness gap at 64 steps (Gauss-Legendre, mean-colour baseline).
4. Deletion / insertion AUC (16 steps; deletion to the mean colour, insertion from a blur) for
   saliency, IG, the CAM family at layer4, frame ablation and random maps, with their AUROC.
5. Speed: attributions per second for every method, batch ``--batch``, the settings listed.

Examples:
    tdrag demo --out runs/demo                          # the trained demo run, once
    python benchmarks/bench_analysis.py                 # runs/demo/run, CPU
    python benchmarks/bench_analysis.py --run runs/x --device cuda --out benchmarks/analysis.md
"""

from __future__ import annotations

import argparse
import datetime
import logging
import math
import os
import platform
import sys
import time

import numpy as np
import pandas as pd
import torch

from analysis.internals.attention import attention_maps
from analysis.attribution.attribute import METHOD_NAMES, attribute
from analysis.attribution.completeness import completeness_gap
from analysis.attribution.faithfulness import faithfulness_scores, pointing_game, relevance_mass
from analysis.attribution.perturbation import random_maps
from analysis.attribution.randomisation import randomisation_check
from analysis.internals.ground_truth import auroc_in_mask, ground_truth_masks
from analysis.report.tables import to_markdown
from tdrag.atomic import write_text
from tdrag.models.registry import load_model
from tdrag.data.cache import open_cache
from tdrag.data.augment import eval_transform
from tdrag.runs.layout import RunPaths

# Speed settings: what each method costs per clip is set by these.
SPEED_OPTIONS = {
    "integrated_gradients": {"n_steps": 32},
    "saliency": {},
    "smoothgrad": {"nt_samples": 16},
    "occlusion": {"window": (2, 16, 16), "strides": (2, 8, 8)},
    "gradcam": {"layer": "layer4"},
    "gradcam_plus_plus": {"layer": "layer4"},
    "xgradcam": {"layer": "layer4"},
    "layercam": {"layer": "layer4"},
    "guided_gradcam": {"layer": "layer4"},
    "frame_ablation": {},
}

#: The attributions scored against the ground truth: row name -> (method, options).
AGREEMENT_ATTRIBUTIONS = {
    **{f"{method} {layer}": (method, {"layer": layer})
       for method in ("gradcam", "gradcam_plus_plus", "xgradcam", "layercam") for layer in ("layer4", "layer3")},
    "saliency": ("saliency", {}),
}


PARTS = ("agreement", "randomisation", "completeness", "curves", "speed")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default="runs/demo/run", help="trained run dir (default: the demo's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--clips", type=int, default=0, help="test clips for the pointing game (0 = all)")
    p.add_argument("--heavy-clips", type=int, default=8, help="clips for randomisation, IG, deletion/insertion")
    p.add_argument("--batch", type=int, default=4, help="clips per attribution call")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (default: all)",
    )
    p.add_argument("--untrained-width", type=int, default=0,
                   help="speed only, without a trained run: an untrained TDRAG of this width on random "
                        "16 x 112 x 112 clips (64 = full size; what benchmarks/gpu_suite.sh measures)")
    p.add_argument("--out", default="", help="also write the Markdown here")
    args = p.parse_args(argv)
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        p.error(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    return args


def load_split(run: str, device: torch.device, limit: int):
    model, config = load_model(run, device=device)
    cache = open_cache(config.data.cache)
    rows = cache.rows(config.data.fold, "test")
    if limit:
        rows = rows[:limit]
    clips = eval_transform(torch.from_numpy(np.ascontiguousarray(cache.frames[rows])), crop=config.data.crop)
    labels = torch.from_numpy(cache.labels[rows])
    masks = ground_truth_masks(cache, rows, config.data.root, crop=config.data.crop)
    return model, config, clips, labels, masks


def agreement_table(model, clips, labels, masks, batch: int, device) -> pd.DataFrame:
    """AUROC, pointing game (per frame and per clip) and relevance mass of each kind of map."""
    per_kind: dict[str, list[torch.Tensor]] = {}
    for start in range(0, clips.shape[0], batch):
        x = clips[start : start + batch].to(device)
        y = labels[start : start + batch]
        maps = {f"attention {k}": v.cpu() for k, v in attention_maps(model, x).items()}
        for name, (method, options) in AGREEMENT_ATTRIBUTIONS.items():
            maps[name] = attribute(model, x, y, method, **options).cpu()
        maps["random (chance)"] = random_maps(x[:, 0].cpu(), seed=start)
        for name, m in maps.items():
            per_kind.setdefault(name, []).append(m)
    rows = []
    for name, parts in per_kind.items():
        m = torch.cat(parts)
        pg_frame = pointing_game(m, masks, per="frame")
        pg_clip = pointing_game(m, masks, per="clip")
        pg_tol = pointing_game(m, masks, per="frame", tolerance=2)
        rm = relevance_mass(m, masks)
        auroc = auroc_in_mask(m, masks)
        rows.append(
            {
                "map": name,
                "clips scored": int((~pg_frame.isnan()).sum()),
                "AUROC": float(np.nanmean(auroc.numpy())),
                "pointing (frame)": float(np.nanmean(pg_frame.numpy())),
                "pointing (frame, 2 px tol.)": float(np.nanmean(pg_tol.numpy())),
                "pointing (clip)": float(np.nanmean(pg_clip.numpy())),
                "relevance mass": float(np.nanmean(rm.numpy())),
            }
        )
    return pd.DataFrame(rows)


def randomisation_table(model, clips, labels) -> pd.DataFrame:
    out = []
    for method, opts in (("gradcam", {"layer": "layer4"}), ("saliency", {})):
        t = randomisation_check(model, clips, labels, method, **opts)
        g = t.groupby(["step", "layer"], sort=True)[["spearman", "spearman_abs"]].mean().reset_index()
        g.insert(0, "method", method)
        out.append(g)
    return pd.concat(out, ignore_index=True)


def speed_table(model, clips, labels, device) -> pd.DataFrame:
    """Wall and CPU seconds of every method on ``clips``, and of Captum's IntegratedGradients on the
    whole model (the reference for ours, which takes the path integral past the stem convolution)."""
    rows = []
    for method in METHOD_NAMES:
        opts = SPEED_OPTIONS[method]
        rows.append(_timed_row(method, opts, clips.shape[0], device,
                               lambda c, y, m=method, o=opts: attribute(model, c, y, m, **o), clips, labels))
    ig = SPEED_OPTIONS["integrated_gradients"]
    rows.append(_timed_row("integrated_gradients (Captum, whole model)", ig, clips.shape[0], device,
                           lambda c, y: _captum_integrated_gradients(model, c, y, ig["n_steps"]), clips, labels))
    return pd.DataFrame(rows)


def _captum_integrated_gradients(model, clips, labels, n_steps: int) -> torch.Tensor:
    from captum.attr import IntegratedGradients

    from tdrag.runtime import eval_mode

    with eval_mode(model):
        return IntegratedGradients(model).attribute(clips.clone().requires_grad_(True), baselines=0.0, target=labels,
                                                    n_steps=n_steps, internal_batch_size=max(16, len(clips)))


def _timed_row(method: str, opts: dict, batch: int, device: torch.device, run, clips, labels) -> dict:
    run(clips[:1], labels[:1])  # warm-up (and lazy imports)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    run(clips, labels)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    return {
        "method": method,
        "settings": ", ".join(f"{k}={v}" for k, v in opts.items()) or "-",
        "batch": batch,
        "wall s": seconds,
        "clips/s (wall)": batch / seconds,
        # On a shared machine wall time measures the share of the cores we got; process
        # CPU time (all threads) is the cost of the method itself.
        "CPU s": cpu_seconds,
        "clips per CPU-s": batch / cpu_seconds if cpu_seconds > 0 else float("nan"),
    }


def curves_section(model, x, y, masks, batch: int) -> list[str]:
    """Mean deletion / insertion AUC per method (and random maps) as Markdown lines."""
    methods = {
        "saliency": {},
        "integrated_gradients": {"n_steps": 32},
        "gradcam": {"layer": "layer4"},
        "gradcam_plus_plus": {"layer": "layer4"},
        "xgradcam": {"layer": "layer4"},
        "layercam": {"layer": "layer4"},
        "frame_ablation": {},
    }
    scores = faithfulness_scores(model, x, y, methods, masks=masks, steps=16, batch_size=batch, progress=False)
    curves = scores.groupby("method", sort=False)[["deletion_auc", "insertion_auc", "auroc"]].mean().reset_index()
    return [
        f"### Deletion / insertion AUC ({x.shape[0]} clips, 16 steps, target probability)",
        "",
        "Deletion replaces the top-ranked voxels (frames for frame ablation) by the mean colour "
        "(lower = more faithful); insertion puts them back into a blurred clip (higher = more faithful). "
        "AUROC: the map as a detector of the ground-truth pixels (0.5 = chance; none for frame ablation).",
        "",
        to_markdown(fmt(curves), index=False),
        "",
    ]


def fmt(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Floats as fixed-point strings (NaN left for the table writer to blank)."""
    cell = lambda v: f"{v:.{digits}f}" if isinstance(v, float) and not math.isnan(v) else v  # noqa: E731
    # DataFrame.map is pandas >= 2.1; applymap is its older name (removed in pandas 3).
    return df.map(cell) if hasattr(df, "map") else df.applymap(cell)


def untrained_speed(args, device: torch.device, argv) -> int:
    """Attributions per second per method on an untrained TDRAG (speed does not depend on the weights)."""
    from tdrag.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("tdrag", width=args.untrained_width).to(device).eval()
    clips = torch.randn(args.batch, 3, 16, 112, 112, device=device)
    labels = torch.randint(0, 7, (args.batch,))
    speed = speed_table(model, clips, labels, device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    text = "\n".join([
        f"### Attribution speed, untrained TDRAG width {args.untrained_width} ({device}: {card}, batch {args.batch}, "
        f"16x112x112, torch {torch.__version__}, {datetime.date.today()})",
        "",
        f"Command: `python benchmarks/bench_analysis.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        to_markdown(fmt(speed, 2), index=False),
        "",
    ])
    print(text)
    if args.out:
        write_text(args.out, text + "\n")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.untrained_width:
        return untrained_speed(args, device, argv)
    if not RunPaths(args.run).checkpoints.is_dir():
        print(f"{args.run}: no trained run there (make one with `tdrag demo --out runs/demo`)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    model, config, clips, labels, masks = load_split(args.run, device, args.clips)
    with torch.no_grad():
        preds = torch.cat([model(clips[i : i + 16].to(device)).argmax(1).cpu() for i in range(0, len(clips), 16)])
    acc = float((preds == labels).float().mean())
    n_heavy = min(args.heavy_clips, clips.shape[0])
    # The costly parts use the first clips of the test split: the same clips on every run.
    hx, hy = clips[:n_heavy].to(device), labels[:n_heavy]

    lines = [
        "## Analysis toolkit: faithfulness and speed (bench_analysis.py)",
        "",
        f"Date {datetime.date.today()}, device {device} "
        f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or 'CPU'}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, load average "
        f"{os.getloadavg()[0]:.1f} at the start. Run `{args.run}` "
        f"({config.model.name}, width {config.model.width}, {config.data.frames}x{config.data.crop}x{config.data.crop}), "
        f"fold {config.data.fold} test split: {clips.shape[0]} clips, accuracy {acc:.3f} on them. "
        f"Targets: true labels. Command: `python benchmarks/bench_analysis.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        "",
    ]
    print("\n".join(lines), flush=True)
    if "agreement" in args.parts:
        agree = agreement_table(model, clips, labels, masks, args.batch, device)
        part = [
            "### Agreement with the synthetic ground-truth masks",
            "",
            "AUROC: the map as a detector of the mask's pixels, per frame with a non-empty mask, "
            "averaged (0.5 = chance; a floor under the map does not dilute it). "
            "Pointing game: share of frames (with a non-empty mask) whose map maximum lies in the "
            "mask (ties share the hit); per clip: the single clip-wide maximum. Relevance mass: "
            "share of the positive map inside the masks. Random maps give the chance level.",
            "",
            to_markdown(fmt(agree), index=False),
            "",
        ]
        print("\n".join(part), flush=True)
        lines += part

    if "randomisation" in args.parts:
        rnd = randomisation_table(model, hx, hy)
        part = [
            f"### Cascading randomisation ({n_heavy} clips; mean Spearman with the original map)",
            "",
            to_markdown(fmt(rnd), index=False),
            "",
        ]
        print("\n".join(part), flush=True)
        lines += part

    if "completeness" in args.parts:
        gap = completeness_gap(model, hx, hy, n_steps=64)
        part = [
            f"### Integrated Gradients completeness at 64 steps ({n_heavy} clips, Gauss-Legendre, "
            "baseline 0 = mean colour)",
            "",
            "gap = |sum(attr) - (f(x) - f(b))| / |f(x) - f(b)| on the target logit: "
            f"mean {gap['gap'].mean():.4f}, median {gap['gap'].median():.4f}, max {gap['gap'].max():.4f} "
            f"(|f(x) - f(b)| mean {gap['output_difference'].abs().mean():.3f}).",
            "",
        ]
        print("\n".join(part), flush=True)
        lines += part

    if "curves" in args.parts:
        part = curves_section(model, hx, hy, masks[:n_heavy], args.batch)
        print("\n".join(part), flush=True)
        lines += part

    if "speed" in args.parts:
        speed = speed_table(model, clips[: args.batch].to(device), labels[: args.batch], device)
        part = [
            f"### Speed ({device}, batch {args.batch}, {config.data.frames}x{config.data.crop}x{config.data.crop})",
            "",
            to_markdown(fmt(speed, 2), index=False),
            "",
        ]
        print("\n".join(part), flush=True)
        lines += part
    lines.append(f"Total bench time {time.perf_counter() - t0:.0f} s.")
    print(lines[-1])
    if args.out:
        write_text(args.out, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
