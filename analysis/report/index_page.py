"""The dossier's index page: the run at a glance, then one row per class linking its page.

From top to bottom: the run summary (model, data, split, WAR / UAR / macro-F1, the checkpoint shown
and why, what the step readouts mean); the row-normalised confusion matrix and the per-class
recall; the class table (a thumbnail of the class-mean map over one of its faces, support,
precision, recall, F1, its page); the facial-region heat table (classes x regions) with a link to
the full region profile as CSV; the "Time" section (order tests, and on synthetic data the temporal
views' agreement with the ground truth); the classes whose page failed. Figures are embedded (PNG data
URIs), so ``index.html`` is one self-contained file of the dossier folder.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping

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


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(data: bytes, alt: str, css: str = "") -> str:
    return f'<img src="{_png_uri(data)}" alt="{html.escape(alt)}"{f" class={css!r}" if css else ""}>'


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


def _summary(run) -> str:
    y, p, n = run.labels, run.predictions, run.num_classes
    esc = html.escape
    return (f"<p>Run <code>{esc(str(run.run_dir))}</code>: model <code>{esc(run.config.model.name)}</code>, dataset "
            f"{esc(str(run.cache.dataset))} ({n} classes), fold {run.config.data.fold}, {esc(run.split)} split, "
            f"{len(run)} clips of {run.cache.num_frames} keyframes at {run.crop} px analysed. "
            f"<b>WAR {100 * metrics.war(y, p, n):.2f} %</b>, <b>UAR {100 * metrics.uar(y, p, n):.2f} %</b>, "
            f"macro-F1 {100 * metrics.macro_f1(y, p, n):.2f} %.</p>\n"
            f"<p><b>Checkpoint shown:</b> {esc(run.checkpoint.reason)}.</p>\n"
            f"<p><b>Step readouts:</b> {esc(run.step_readout_meaning())}</p>")


def index_html(run, summary: pd.DataFrame, pages: Mapping[str, str], failed: Mapping[str, str], scores: MapScores,
               profile: pd.DataFrame, region_csv: str | None, dpi: int = 80, time_html: str = "") -> str:
    """The whole index page (see the module docstring).

    Args:
        run: the opened run the dossier shows.
        summary: ``class_page.class_summary(run)``.
        pages: class name -> its page's file name; failed: class name -> one-line reason.
        scores, profile: :func:`analysis.report.region_profile.score_maps` over the run's clips and its
            :func:`~analysis.report.region_profile.region_profile`.
        region_csv: the profile's CSV file name in the dossier folder, or None.
        time_html: the "Time" section (``analysis.report.time_section.time_section_html``), or "".
    """
    esc = html.escape
    names = list(run.class_names)
    counts = metrics.confusion_matrix(run.labels, run.predictions, run.num_classes)
    confusion = figure_png(plot_confusion_matrix(counts, names, normalize=True), dpi)
    recall = figure_png(plot_per_class_recall(per_class_table(run.labels, run.predictions, names)), dpi)
    map_name, why = index_map(scores)
    rows = []
    for c, name in enumerate(names):
        if name not in pages and name not in failed:
            continue
        r = summary.loc[name]
        link = f'<a href="{esc(pages[name])}">{esc(name)}</a>' if name in pages else esc(name)
        status = "ok" if name not in failed else f'<span class="failed">failed: {esc(failed[name])}</span>'
        thumb = class_thumbnail(run, scores, map_name, c) if map_name else None
        cell = _img(thumb, f"{name}: class-mean {map_name}", "thumb") if thumb else ""
        rows.append(f"<tr><td>{link}</td><td class=\"thumb\">{cell}</td><td>{int(r['support'])}</td>"
                    f"<td>{100 * r['precision']:.1f}</td><td class=\"recall\">{100 * r['recall']:.1f}</td>"
                    f"<td>{100 * r['f1']:.1f}</td><td>{status}</td></tr>")
    regions = ""
    if map_name is not None and not profile.empty:
        heat = figure_png(plot_region_heat_table(profile, map_name, names), round(1.25 * dpi))
        csv = f' The whole profile (every map, class and region): <a href="{esc(region_csv)}">{esc(region_csv)}</a>.' \
            if region_csv else ""
        source = profile["source"].iloc[0]
        approximate = (" The regions come from a canonical template of aligned face crops: approximate."
                       if source == "template" else " The regions are those the synthetic renderer drew.")
        regions = (f'<h2 id="regions">Facial regions</h2>\n<p>Per class, the share of <b>{esc(why)}</b> that falls '
                   "in each facial region divided by the region's share of the pixels: 1 is what a map spread evenly "
                   "gives, red favours the region, blue avoids it; outlined: the regions that carry the class's "
                   f"signal.{approximate}{csv}</p>\n{_img(heat, 'facial-region heat table', 'figure')}")
    failed_list = ('<h2>Failed</h2><ul id="failed">' + "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in failed.items())
                   + "</ul>") if failed else ""
    thumb_note = (f"Thumbnail: the class-mean {esc(map_name)} over its clips and keyframes, scaled from its minimum "
                  "(blue) to its maximum (red), over the middle keyframe of the class's most confident correct clip."
                  if map_name else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Dossier: {esc(str(run.run_dir))}</title>
<style>body{{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;line-height:1.4}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:right;vertical-align:middle}}
td:first-child,th:first-child{{text-align:left}}td.thumb{{padding:2px}}img.thumb{{display:block}}
img.figure{{max-width:100%;height:auto}}
.figures{{display:flex;gap:1em;align-items:flex-start}}.figures img.figure{{max-width:calc(50% - .5em)}}
.failed{{color:#b00}}</style></head>
<body>
<h1>Per-class dossier</h1>
{_summary(run)}
<div class="figures">{_img(confusion, "confusion matrix (row-normalised)", "figure")}
{_img(recall, "per-class recall", "figure")}</div>
<h2 id="classes-heading">Classes</h2>
<table id="classes"><thead><tr><th>class</th><th>class-mean map</th><th>support</th><th>precision %</th><th>recall %</th><th>F1 %</th>
<th>page</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p>{thumb_note}</p>
{regions}
{time_html}
{failed_list}
</body></html>
"""
