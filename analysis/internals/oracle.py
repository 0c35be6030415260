"""What a synthetic preset asks of a model: classifiers on the renderer's own part curves.

A model sees pixels; the renderer knows what it drew. Given each clip's expression curves (every
expression parameter the renderer drew at every frame: the part curves of
``tdrag.data.synthetic.load_clip_timeline`` times the clip's apex face and strength, blinks left
out), simple classifiers show how separable two classes are **in principle** from each kind of
information:

- ``ordered``: the curves at the T keyframes, in order (what a perfect part reader with a
  perfect sense of time sees);
- ``bag``: the same keyframes as an unordered bag (rows sorted, so any order gives the same
  features): what is left when order is thrown away;
- ``apex``: each part's largest value over the whole clip (the apex face alone, no dynamics);
- ``all frames``: the curves over every frame, resampled to a fixed length (no keyframe rule).

Keyframes are the ones a frame cache holds (``source_frames`` of ``tdrag prepare``), so each
keyframe rule and T is judged by what it keeps. Accuracy is the mean over stratified k-fold
cross-validation, the best of a logistic regression, gradient boosting and a small MLP (best of
three: a slightly optimistic ceiling, which is what an oracle is for), for each class pair asked
(the preset's shared-apex twins by default) and for all classes together. If the ``bag`` already
separates a pair as well as ``ordered``, the benchmark does not ask a model for order.

    table = oracle_table(root, {("redundancy", 8): cache_dir, ...}, pairs=[("Fear", "Surprise")])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

REPRESENTATIONS = ("ordered", "bag", "apex", "all frames")
#: Length every clip's curves are resampled to for ``all frames``.
ALL_FRAMES = 32
ALL_CLASSES = "all classes"


@dataclass
class CurveSet:
    """The renderer's curves of a data set's clips. ``curves[i]`` is ``(L_i, P)``: the value of each
    expression parameter drawn at each frame; ``labels`` ``(N,)`` 0-based, ``video_ids`` in order."""

    curves: list[np.ndarray]
    labels: np.ndarray
    video_ids: list[str]
    class_names: tuple[str, ...]


def load_curves(root: str | os.PathLike) -> CurveSet:
    """Every clip's expression curves from a synthetic set's temporal ground truth: part curve x
    the class's apex face (the preset's, shared-apex twins included) x the clip's strength."""
    from tdrag.data.synthetic import load_clip_timeline, load_meta
    from tdrag.data.synthetic.expressions import apex_vector
    from tdrag.data.synthetic.faces import PARAM_GROUP_INDEX

    meta = load_meta(root)
    shared = bool(meta.get("preset_settings", {}).get("shared_apex", False))
    curves, labels, ids = [], [], []
    for row in meta["clips"]:
        timeline = load_clip_timeline(root, row["video_id"])
        apex = apex_vector(row["label_name"], shared)
        curves.append(timeline.curves.astype(np.float64)[:, PARAM_GROUP_INDEX] * apex[None] * timeline.strength)
        labels.append(int(row["label"]))
        ids.append(str(row["video_id"]))
    return CurveSet(curves, np.asarray(labels, dtype=np.int64), ids, tuple(meta["classes"]))


def cache_keyframes(cache, video_ids: Sequence[str]) -> list[np.ndarray]:
    """The ``(T,)`` source frame indices a frame cache keeps for each of ``video_ids``."""
    by_id = {str(entry["video_id"]): np.asarray(entry["source_frames"], dtype=np.int64) for entry in cache.index}
    missing = [v for v in video_ids if v not in by_id]
    if missing:
        raise ValueError(f"{cache.path}: no cache row for clips {missing[:3]} (a cache of another data set?)")
    return [by_id[v] for v in video_ids]


def features(curves: Sequence[np.ndarray], representation: str, keyframes: Sequence[np.ndarray] | None = None
             ) -> np.ndarray:
    """``(N, F)`` features of every clip in one representation (the module docstring).

    ``keyframes`` (one ``(T,)`` index array per clip) is needed for ``ordered`` and ``bag``.
    """
    if representation in ("ordered", "bag"):
        if keyframes is None:
            raise ValueError(f"the {representation!r} representation needs the keyframes")
        rows = []
        for c, k in zip(curves, keyframes):
            at = c[np.asarray(k)]  # (T, G)
            if representation == "bag":
                at = at[np.lexsort(at.T[::-1])]  # rows sorted: the same features for any order
            rows.append(at.ravel())
        return np.stack(rows)
    if representation == "apex":
        return np.stack([c.max(axis=0) for c in curves])
    if representation == "all frames":
        grid = np.linspace(0, 1, ALL_FRAMES)
        return np.stack([np.stack([np.interp(grid, np.linspace(0, 1, len(c)), c[:, g]) for g in range(c.shape[1])],
                                  axis=1).ravel() for c in curves])
    raise ValueError(f"unknown representation {representation!r}; choose from {', '.join(REPRESENTATIONS)}")


def classifiers(seed: int = 0) -> dict:
    """The three classifiers the oracle takes the best of (scikit-learn)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "boosting": HistGradientBoostingClassifier(random_state=seed),
        "MLP": make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=1000, random_state=seed)),
    }


def best_accuracy(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[float, str]:
    """The best mean stratified-k-fold accuracy of :func:`classifiers` on ``(x, y)``, and which one."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # an MLP stopped at max_iter still scores: its accuracy is what counts
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = {name: float(cross_val_score(model, x, y, cv=split).mean())
                  for name, model in classifiers(seed).items()}
    name = max(scores, key=scores.get)
    return scores[name], name


def default_pairs(class_names: Sequence[str], shared_apex: bool) -> list[tuple[str, str]]:
    """The pairs a preset makes hard: its shared-apex twins (each pair once)."""
    from tdrag.data.synthetic.timeline import twin_of

    pairs = []
    for name in class_names:
        twin = twin_of(name, tuple(class_names), shared_apex)
        if twin is not None and (twin, name) not in pairs:
            pairs.append((name, twin))
    return pairs


def oracle_table(data: CurveSet, keyframes: Mapping[tuple[str, int], Sequence[np.ndarray]],
                 pairs: Sequence[tuple[str, str]], folds: int = 5, seed: int = 0, progress: bool = False
                 ) -> pd.DataFrame:
    """Oracle accuracy per task (each pair, and all classes), representation and keyframe rule.

    Args:
        data: the curves (:func:`load_curves`).
        keyframes: (rule, T) -> one ``(T,)`` index array per clip (:func:`cache_keyframes`).
        pairs: class-name pairs; each is a binary task on its two classes' clips.

    Returns:
        DataFrame: task, representation, keyframes ("rule T", or "-" for apex / all frames),
        accuracy (0..1), classifier (the best of the three), clips.
    """
    from tqdm.auto import tqdm

    tasks = [(f"{a} vs {b}", (data.class_names.index(a), data.class_names.index(b))) for a, b in pairs]
    tasks.append((ALL_CLASSES, tuple(range(len(data.class_names)))))
    jobs = [(rep, None) for rep in ("apex", "all frames")]
    jobs += [(rep, key) for key in keyframes for rep in ("ordered", "bag")]
    rows = []
    for (task, members), (rep, key) in tqdm([(t, j) for t in tasks for j in jobs], desc="oracle", disable=not progress):
        keep = np.isin(data.labels, members)
        curves = [c for c, k in zip(data.curves, keep) if k]
        picked = None if key is None else [f for f, k in zip(keyframes[key], keep) if k]
        accuracy, name = best_accuracy(features(curves, rep, picked), data.labels[keep], folds, seed)
        rows.append({"task": task, "representation": rep, "keyframes": "-" if key is None else f"{key[0]} {key[1]}",
                     "accuracy": accuracy, "classifier": name, "clips": int(keep.sum())})
    return pd.DataFrame(rows)


def oracle_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: one row per task and representation, one column per keyframe rule."""
    wide = table.pivot_table(index=["task", "representation"], columns="keyframes", values="accuracy",
                             aggfunc="first", sort=False)
    columns = list(wide.columns)
    lines = ["| task | representation | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for (task, rep), row in wide.iterrows():
        cells = ["" if np.isnan(v) else f"{100 * v:.1f}" for v in row.values]
        lines.append(f"| {task} | {rep} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
