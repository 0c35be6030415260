"""The dossier's index page: the run at a glance, then one row per class linking its page.

From top to bottom: the run summary (model, data, split, WAR / UAR / macro-F1, the checkpoint shown
and why, what the step readouts mean); the row-normalised confusion matrix and the per-class
recall; the class table (a thumbnail of the class-mean map over one of its faces, support,
precision, recall, F1, its page); the facial-region heat table (classes x regions) with a link to
the full region profile as CSV; the "Time" section (order tests, and on synthetic data the temporal
views' agreement with the ground truth); the classes whose page failed. Figures are embedded (PNG data
URIs), so ``index.html`` is one self-contained file of the dossier folder. The HTML is the Jinja2
template ``templates/dossier_index.html.j2``; this module computes what it shows.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from analysis.attribution.animation import overlay_rgb
from analysis.plotting import figure_png
from analysis.report.figures import plot_confusion_matrix, plot_per_class_recall
from analysis.report.region_profile import MapScores, best_localising_map, plot_region_heat_table
from analysis.report.results import per_class_table
from tdrag import metrics

THUMBNAIL_SIDE = 96
#: The page's Jinja2 template, in :data:`TEMPLATES`.
TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "dossier_index.html.j2"


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def index_map(scores: MapScores) -> tuple[str | None, str]:
    """The map the heat table and the thumbnails show, and why: the attention stage that agrees best
    with the ground truth (highest AUROC) on synthetic data, the deepest stage otherwise; for a model
    without attention, its first attribution map."""
    best = best_localising_map(scores)
    if best is not None:
        if scores.auroc:
            auroc = float(torch.nanmean(scores.auroc[best]))
            return best, f"{best}: the attention stage that agrees best with the ground truth (AUROC {auroc:.2f})"
        return best, f"{best}: the deepest attention stage (no ground truth to choose by)"
    names = scores.map_names
    if not names:
        return None, "no map to show"
    return names[0], f"{names[0]}: the model has no attention stages"


def class_thumbnail(run, scores: MapScores, map_name: str, label: int) -> bytes | None:
    """PNG of the class-mean ``map_name`` (over the class's clips and keyframes, scaled from its
    minimum to its maximum) over the middle keyframe of the class's most confident correct clip
    (its first clip when none is correct); None for a class without clips."""
    mean = scores.class_mean_maps[map_name][label]
    if not torch.isfinite(mean).all():
        return None
    positions = run.most_confident(label, correct=True, count=1)
    if len(positions) == 0:
        positions = run.positions_of_class(label)[:1]
    frames = run.frames([int(positions[0])])[0]
    face = frames[frames.shape[0] // 2]
    m = mean.double().numpy()
    spread = m.max() - m.min()
    heat = (m - m.min()) / spread if spread > 0 else np.zeros_like(m)
    picture = cv2.resize(overlay_rgb(face, heat), (THUMBNAIL_SIDE, THUMBNAIL_SIDE), interpolation=cv2.INTER_CUBIC)
    ok, png = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return png.tobytes() if ok else None


def _run_facts(run) -> dict[str, object]:
    """The run at a glance: what it is, its WAR / UAR / macro-F1 (%), the checkpoint shown and why."""
    y, p, n = run.labels, run.predictions, run.num_classes
    return {"dir": str(run.run_dir), "model": run.config.model.name, "dataset": str(run.cache.dataset), "classes": n,
            "fold": run.config.data.fold, "split": run.split, "clips": len(run), "frames": run.cache.num_frames,
            "crop": run.crop, "war": 100 * metrics.war(y, p, n), "uar": 100 * metrics.uar(y, p, n),
            "macro_f1": 100 * metrics.macro_f1(y, p, n), "checkpoint": run.checkpoint.reason,
            "step_readouts": run.step_readout_meaning()}


def _class_rows(run, summary: pd.DataFrame, pages: Mapping[str, str], failed: Mapping[str, str], scores: MapScores,
                map_name: str | None) -> list[dict[str, object]]:
    """One row per class with a page or a failure: its link, thumbnail, support, precision, recall, F1 (%)."""
    rows = []
    for c, name in enumerate(run.class_names):
        if name not in pages and name not in failed:
            continue
        r = summary.loc[name]
        thumb = class_thumbnail(run, scores, map_name, c) if map_name else None
        rows.append({"name": name, "page": pages.get(name), "failed": failed.get(name),
                     "thumbnail": _png_uri(thumb) if thumb else None, "support": int(r["support"]),
                     "precision": 100 * r["precision"], "recall": 100 * r["recall"], "f1": 100 * r["f1"]})
    return rows


def _regions(profile: pd.DataFrame, map_name: str | None, why: str, names: list[str], region_csv: str | None,
             dpi: int) -> dict[str, object] | None:
    """The facial-region section: the heat table of ``map_name`` over the classes (None without a map)."""
    if map_name is None or profile.empty:
        return None
    heat = figure_png(plot_region_heat_table(profile, map_name, names), round(1.25 * dpi))
    return {"why": why, "heat": _png_uri(heat), "csv": region_csv, "template": profile["source"].iloc[0] == "template"}


@functools.lru_cache(maxsize=1)
def _template():
    """The page's Jinja2 template (nbconvert brings Jinja2), autoescaped: values are text."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.get_template(TEMPLATE)


def index_html(run, summary: pd.DataFrame, pages: Mapping[str, str], failed: Mapping[str, str], scores: MapScores,
               profile: pd.DataFrame, region_csv: str | None, dpi: int = 80, time_html: str = "") -> str:
    """The whole index page (see the module docstring), from ``templates/dossier_index.html.j2``.

    Args:
        run: the opened run the dossier shows.
        summary: ``class_page.class_summary(run)``.
        pages: class name -> its page's file name; failed: class name -> one-line reason.
        scores, profile: :func:`analysis.report.region_profile.score_maps` over the run's clips and its
            :func:`~analysis.report.region_profile.region_profile`.
        region_csv: the profile's CSV file name in the dossier folder, or None.
        time_html: the "Time" section (``analysis.report.time_section.time_section_html``), or "".
    """
    from markupsafe import Markup

    names = list(run.class_names)
    counts = metrics.confusion_matrix(run.labels, run.predictions, run.num_classes)
    confusion = figure_png(plot_confusion_matrix(counts, names, normalize=True), dpi)
    recall = figure_png(plot_per_class_recall(per_class_table(run.labels, run.predictions, names)), dpi)
    map_name, why = index_map(scores)
    return _template().render(
        run=_run_facts(run), confusion=_png_uri(confusion), recall=_png_uri(recall), map_name=map_name,
        classes=_class_rows(run, summary, pages, failed, scores, map_name),
        regions=_regions(profile, map_name, why, names, region_csv, dpi),
        time_html=Markup(time_html),  # already HTML (analysis.report.time_section)
        failed=dict(failed))
