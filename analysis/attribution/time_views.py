"""Run-level views of time, checked: the order tests (any data) and the temporal agreement
(synthetic data), each a list of figures, tables and notes for ``display(*view(run))`` in
notebook 03 and the dossier.

    display(*order_test_view(run))            # WAR per order condition, GRU on and off
    display(*temporal_agreement_view(run))    # each temporal view's AUROC beside the prior's
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.internals.order_tests import OrderTestResult, run_order_tests
from analysis.attribution.temporal import has_temporal_truth, temporal_agreement
from analysis.plotting import Note, new_figure

_GRU_COLOURS = {"on": "#1f77b4", "off": "#ff7f0e", "none": "#7f7f7f"}


def plot_order_tests(summary: pd.DataFrame, title: str = "Does the model read time?") -> Figure:
    """WAR (%) per order condition (chosen, shuffled, reversed, static), one bar per GRU state."""
    conditions = list(dict.fromkeys(summary.condition))
    states = list(dict.fromkeys(summary.gru))
    fig = new_figure(1.1 + 0.9 * len(conditions), 3.0)
    ax = fig.add_subplot()
    width = 0.8 / len(states)
    for k, gru in enumerate(states):
        rows = summary[summary.gru == gru].set_index("condition").reindex(conditions)
        label = {"on": "GRU on", "off": "GRU off", "none": "no GRU"}[gru]
        ax.bar(np.arange(len(conditions)) + (k - (len(states) - 1) / 2) * width, 100 * rows.war, width,
               label=label, color=_GRU_COLOURS[gru])
    chosen = summary[summary.condition == "chosen"].war.max()
    ax.axhline(100 * chosen, color="black", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(conditions)), conditions, rotation=30, ha="right")
    ax.set_ylabel("WAR (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def order_test_view(run, result: OrderTestResult | None = None) -> list:
    """The order tests of an opened run: a note on how to read them, the bar chart, the summary
    table (points) and per-class recall (conditions as columns)."""
    result = result or run_order_tests(run)
    per_class = result.per_class.pivot_table(index=["class", "gru"], columns="condition", values="recall",
                                             sort=False)
    note = Note("Each clip scored on its keyframes as chosen, in fixed shuffled orders, reversed, and as its most "
                "expressive keyframe repeated (static). A model that reads only an unordered bag scores the same "
                "chosen, shuffled and reversed; one that reads order loses there; one that reads the apex face "
                "alone keeps its score on static. GRU off: the residual head's pooled path alone.")
    summary = result.summary.assign(war=100 * result.summary.war, uar=100 * result.summary.uar).round(1)
    return [note, plot_order_tests(result.summary), summary, (100 * per_class).round(1)]


def plot_temporal_agreement(table: pd.DataFrame, title: str = "Temporal agreement with the ground truth") -> Figure:
    """Each view's AUROC over all scored clips, with the prior's as a line (0.5 = chance)."""
    rows = table[table["class"] == "all"]
    fig = new_figure(1.2 + 0.8 * len(rows), 3.0)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(rows)), rows.auroc, color="#1f77b4", label="view")
    if len(rows):
        ax.axhline(float(rows.prior_auroc.iloc[0]), color="#d62728", lw=1.2, label="prior (no model)")
    ax.axhline(0.5, color="black", lw=0.8, ls=":", label="chance")
    ax.set_xticks(np.arange(len(rows)), rows.view, rotation=30, ha="right")
    ax.set_ylabel("AUROC of evidence keyframes")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    return fig


def temporal_agreement_view(run, table: pd.DataFrame | None = None, small: bool = False) -> list:
    """Each temporal view's agreement with the synthetic evidence keyframes beside the prior's, as
    a figure and a table per class (or a note where the data has no temporal ground truth)."""
    if table is None:
        if not has_temporal_truth(run.data_root):
            return [Note("No temporal ground truth for this data (only synthetic sets rendered with it have "
                         "`synthetic/temporal/`): the order tests above need none.")]
        table = temporal_agreement(run, small=small)
    if table.empty:
        return [Note("No clip of this split has both evidence keyframes and others: nothing to score.")]
    note = Note("AUROC of each view's per-keyframe importance as a detector of the keyframes that carry the evidence "
                "against the nearest class (0.5 = chance), beside a prior that knows no model: closeness to the "
                "clip's most expressive keyframe. A view no better than the prior says nothing the pixels did not. "
                "Read the GRU views with what this model's step readouts mean (above).")
    wide = table.pivot_table(index="class", columns="view", values="auroc", sort=False)
    wide["prior"] = table.groupby("class", sort=False).prior_auroc.first()
    wide["clips"] = table.groupby("class", sort=False).clips.first()
    return [note, plot_temporal_agreement(table), wide.round(3)]
