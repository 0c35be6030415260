"""What keyframe selectors pick on the `medium` synthetic set, against what each clip holds.

    python benchmarks/bench_keyframes.py                       # every method, 300 clips, T = 8
    python benchmarks/bench_keyframes.py --clips 600 --markdown keyframes.md

The clips are the benchmark's own (``configs/synthetic_medium.yaml``: render seed 0, 64 px); each
is re-rendered in memory with the renderer's record of what its nuisances did per frame
(``tdrag.data.synthetic.clips.render``: occluder over the face, distractor visible, brightness
flicker, pose), so the keyframes can be held against the truth. Per method (each of
``tdrag.data.keyframes.KEYFRAME_METHODS``), over all clips with an expression (not Neutral):

* ``apex hit``: share of clips with a keyframe at >= 90 % of the clip's peak expression intensity
  (``medium`` relaxes the expression soon after a brief apex, so missing it loses the signal);
* ``peak kept``: mean of (highest intensity among the keyframes / the clip's peak);
* ``onset->apex``: mean number of keyframes between the onset and the apex (the dynamics that
  tell Fear from Surprise and Disgust from Angry happen there);
* ``largest gap``: mean of the longest stretch of the clip without a keyframe (start and end
  included), as a share of its length: time coverage (uniform sampling gives about 1 / T);
* ``occluded`` / ``distractor`` / ``pose motion``: how strongly keyframes gather on frames where an
  occluder covers the face, where a distractor is visible, and on the frames of largest pose
  change, as the ratio (share of keyframes on such frames) / (share of the clips' frames that
  are such frames), pooled over clips and counted over distinct frames (a keyframe on a held
  frame counts as the frame it repeats): 1 = no attraction;
* ``repeats``: share of the T keyframes that show the same image as another keyframe (wasted
  slots; held runs repeat a frame exactly).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tdrag.config import load_config  # noqa: E402
from tdrag.data.keyframes import KEYFRAME_METHODS, select_keyframes  # noqa: E402

CONFIG = REPO / "configs" / "synthetic_medium.yaml"


def clip_truth(seed: int, index: int, label: int, preset: str, size: int) -> dict:
    """One clip re-rendered: RGB frames ``(L, S, S, 3)`` and per-frame truth arrays ``(L,)``."""
    from tdrag.data.synthetic.clips import render
    from tdrag.data.synthetic.dataset import clip_rng, get_preset

    clip = render(clip_rng(seed, index), int(label), get_preset(preset), int(size))
    steps = clip.frame_step
    rgb = np.stack([cv2.cvtColor(img, cv2.COLOR_BGR2RGB) for img in clip.steps_bgr])[steps]
    # Pose change per render step: how far the face's centre moved since the previous step (px).
    centre = np.array([size / 2, size / 2, 1.0])
    where = clip.poses @ centre  # (D, 2)
    motion = np.r_[0.0, np.linalg.norm(np.diff(where, axis=0), axis=1)]
    return {
        "frames": rgb, "label": int(label), "intensity": clip.intensity, "onset": clip.onset, "apex": clip.apex,
        "occluded": clip.occluded[steps], "distractor": clip.distractor_visible[steps],
        "motion": motion[steps] * (np.r_[1, np.diff(steps)] > 0),  # a held frame does not move
        "held": np.r_[False, np.diff(steps) == 0],
        "step": steps,
    }


def _attraction(picked: np.ndarray, flags: np.ndarray, held: np.ndarray) -> tuple[float, float]:
    """(share of keyframes on flagged frames, share of the clip's distinct frames flagged); a held
    frame repeats the previous one, so a keyframe on it counts as the start of its run."""
    first = np.flatnonzero(~held)
    shown = first[np.searchsorted(first, picked, side="right") - 1]
    return float(flags[shown].mean()), float(flags[first].mean())


def score(indices: np.ndarray, truth: dict) -> dict[str, float]:
    """The per-clip figures of the module docstring for one clip's keyframe indices."""
    length = len(truth["intensity"])
    intensity = truth["intensity"]
    peak = float(intensity.max())
    picked = np.unique(indices)
    edges = np.r_[-1, picked, length]
    motion, held = truth["motion"], truth["held"]
    distinct = motion[~held]
    top_motion = (motion >= np.quantile(distinct, 0.9)) & ~held if distinct.max() > 0 else np.zeros(length, dtype=bool)
    onset, apex = truth["onset"], truth["apex"]
    return {
        "apex_hit": float((intensity[picked] >= 0.9 * peak).any()),
        "peak_kept": float(intensity[picked].max() / peak) if peak > 0 else float("nan"),
        "onset_to_apex": float(((picked >= onset) & (picked <= apex)).sum()) if onset is not None else float("nan"),
        "largest_gap": float((np.diff(edges) - 1).max() / length),
        "occluded": _attraction(indices, truth["occluded"], held),
        "distractor": _attraction(indices, truth["distractor"], held),
        "pose_motion": _attraction(indices, top_motion, held),
        "repeats": 1.0 - len(np.unique(truth["step"][indices])) / len(indices),
    }


def evaluate(methods: list[str], clips: int, frames: int, seconds: dict[str, float] | None = None) -> dict:
    """Mean of every figure per method over the expressive clips of the benchmark's set."""
    from tdrag.data.synthetic.dataset import assign_labels_and_folds

    config = load_config(CONFIG)
    s = config.synth
    labels, _ = assign_labels_and_folds(s.clips, s.render_seed)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    for index in range(min(clips, s.clips)):
        truth = clip_truth(s.render_seed, index, int(labels[index]), s.preset, s.render_size)
        if truth["onset"] is None:  # Neutral has no expression to find
            continue
        for method in methods:
            started = time.perf_counter()
            picked = select_keyframes(truth["frames"], frames, method)
            if seconds is not None:
                seconds[method] = seconds.get(method, 0.0) + time.perf_counter() - started
            rows[method].append(score(picked, truth))
    table = {}
    for m, rs in rows.items():
        row = {"clips": len(rs)}
        for k in rs[0]:
            if isinstance(rs[0][k], tuple):  # an attraction: pooled over clips, keyframes over base rate
                row[k] = float(np.mean([r[k][0] for r in rs]) / np.mean([r[k][1] for r in rs]))
            else:
                row[k] = float(np.nanmean([r[k] for r in rs]))
        table[m] = row
    return table


def markdown(table: dict) -> str:
    keys = ["apex_hit", "peak_kept", "onset_to_apex", "largest_gap", "occluded", "distractor", "pose_motion", "repeats"]
    lines = ["| method | clips | apex hit | peak kept | onset->apex | largest gap | occluded | distractor | pose motion | repeats |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for method, row in table.items():
        lines.append(f"| {method} | {row['clips']} | " + " | ".join(f"{row[k]:.2f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(KEYFRAME_METHODS))
    parser.add_argument("--clips", type=int, default=300, help="first N clips of the medium set (default 300)")
    parser.add_argument("--frames", type=int, default=None, help="T (default: the medium config's)")
    parser.add_argument("--markdown", default=None, help="write the table here")
    args = parser.parse_args(argv)
    frames = args.frames or load_config(CONFIG).data.frames
    seconds: dict[str, float] = {}
    table = evaluate([m for m in args.methods.split(",") if m], args.clips, frames, seconds)
    text = markdown(table)
    print(text)
    print("selection time per clip: " + ", ".join(f"{m} {1000 * t / max(1, table[m]['clips']):.2f} ms"
                                                 for m, t in seconds.items()))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
