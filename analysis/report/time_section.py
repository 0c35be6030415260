"""The dossier's "Time" section: the order tests (any data) and the temporal agreement (synthetic
data with temporal ground truth), measured once per dossier over the run's clips, written as
``order_tests.csv`` and ``temporal_agreement.csv`` beside the pages and shown on the index page.

    result = measure_time(run, small=True)
    write_time_csvs(folder, result)                      # ORDER_CSV, AGREEMENT_CSV
    html = time_section_html(result, dpi=80)
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# The model-side imports are made where used: the dossier's CLI reads the file names below
# without loading torch and matplotlib.
if TYPE_CHECKING:
    import pandas as pd

    from analysis.internals.order_tests import OrderTestResult

#: The files this section writes beside the dossier's pages (listed in the dossier's DOSSIER_FILES).
ORDER_CSV = "order_tests.csv"
AGREEMENT_CSV = "temporal_agreement.csv"


@dataclass
class TimeChecks:
    """What the section shows: the order tests, and the temporal agreement (None without temporal
    ground truth)."""

    order: OrderTestResult
    agreement: pd.DataFrame | None


def measure_time(run, small: bool = False, order: OrderTestResult | None = None) -> TimeChecks:
    """Order tests and (where the data has temporal ground truth) temporal agreement of an opened
    run; ``order``: the run's order tests when they are already made (the dossier makes them beside
    its attribution maps)."""
    from analysis.attribution.temporal import has_temporal_truth, temporal_agreement
    from analysis.internals.order_tests import run_order_tests

    agreement = temporal_agreement(run, small=small) if has_temporal_truth(run.data_root) else None
    return TimeChecks(order if order is not None else run_order_tests(run, progress=False), agreement)


def write_time_csvs(folder: str | Path, checks: TimeChecks) -> list[str]:
    """Write ``order_tests.csv`` (class, condition, gru, recall, clips) and, with ground truth,
    ``temporal_agreement.csv`` (class, view, auroc, prior_auroc, clips) into ``folder``; return
    the names written."""
    from tdrag.atomic import atomic_path

    folder = Path(folder)
    written = []
    tables = [(ORDER_CSV, checks.order.per_class[["class", "condition", "gru", "recall", "clips"]])]
    if checks.agreement is not None:
        tables.append((AGREEMENT_CSV, checks.agreement[["class", "view", "auroc", "prior_auroc", "clips"]]))
    for name, table in tables:
        with atomic_path(folder / name) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        written.append(name)
    return written


def _table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(classes="table", border=0, na_rep="–", float_format=lambda v: f"{v:.1f}")


def _figure(fig, alt: str, dpi: int) -> str:
    import base64

    from analysis.plotting import figure_png

    data = base64.b64encode(figure_png(fig, dpi)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" class="figure">'


def time_section_html(checks: TimeChecks, dpi: int = 80) -> str:
    """The index page's "Time" section (HTML): order tests, then temporal agreement."""
    from analysis.attribution.time_views import plot_order_tests, plot_temporal_agreement

    order = checks.order.summary.assign(war=100 * checks.order.summary.war, uar=100 * checks.order.summary.uar)
    per_class = 100 * checks.order.per_class.pivot_table(index=["class", "gru"], columns="condition",
                                                         values="recall", sort=False)
    parts = [
        '<h2 id="time">Time: does the model read order?</h2>',
        "<p>Every clip scored on its keyframes as chosen, in fixed shuffled orders, reversed, and as its most "
        "expressive keyframe repeated (static), with the GRU on and off where the head allows. A model that reads "
        "an unordered bag scores the same chosen, shuffled and reversed; one that reads the apex face alone keeps "
        f'its score on static. Per-class recall: <a href="{ORDER_CSV}">{ORDER_CSV}</a>.</p>',
        _figure(plot_order_tests(checks.order.summary), "order tests", dpi),
        _table_html(order.set_index(["condition", "gru"])),
        "<p>Recall per class (%):</p>",
        _table_html(per_class),
    ]
    if checks.agreement is None:
        parts.append("<p>No temporal ground truth for this data: the agreement of the temporal views is not "
                     "scored (synthetic sets have it in <code>synthetic/temporal/</code>).</p>")
    elif checks.agreement.empty:
        parts.append("<p>No clip has both keyframes that carry the evidence and keyframes that do not: the temporal "
                     "views cannot be scored on this split.</p>")
    else:
        wide = checks.agreement.pivot_table(index="class", columns="view", values="auroc", sort=False)
        wide["prior"] = checks.agreement.groupby("class", sort=False).prior_auroc.first()
        wide["clips"] = checks.agreement.groupby("class", sort=False).clips.first()
        parts += [
            '<h3 id="temporal-agreement">Temporal agreement with the ground truth</h3>',
            "<p>AUROC of each view's per-keyframe importance as a detector of the keyframes that carry the evidence "
            "against the nearest class (0.5 = chance), beside a prior that knows no model (closeness to the most "
            f'expressive keyframe). Table: <a href="{AGREEMENT_CSV}">{AGREEMENT_CSV}</a>.</p>',
            _figure(plot_temporal_agreement(checks.agreement), "temporal agreement", dpi),
            wide.to_html(classes="table", border=0, na_rep="–", float_format=lambda v: f"{v:.3f}"),
        ]
    return "\n".join(parts)
