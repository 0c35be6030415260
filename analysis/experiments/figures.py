"""The ablation's bar chart: test WAR per variant, selected and last epoch, mean ± std over seeds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analysis.experiments.summary import VariantSummary
from analysis.plotting import new_figure, save_figure

#: The bars drawn per variant: figure -> legend label.
BARS = {"test_war": "WAR, epoch chosen on validation", "last_test_war": "WAR, last epoch"}


def ablation_bars(table: dict[str, VariantSummary], title: str = "Ablation on the medium synthetic set (paired seeds)"
                  ) -> Figure:
    """One group of bars per variant (``paired_summary``'s rows), error bars one std over seeds."""
    names = list(table)
    x = np.arange(len(names))
    fig = new_figure(1.3 * len(names) + 2, 3.6)
    ax = fig.subplots()
    width = 0.38
    for k, (key, label) in enumerate(BARS.items()):
        values = [table[n].figure(key) for n in names]
        means = [100 * v.mean if v is not None else np.nan for v in values]
        stds = [100 * v.std if v is not None else 0.0 for v in values]
        ax.bar(x + (k - 0.5) * width, means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel("test (%)  mean ± std over seeds")
    ax.set_title(title)
    ax.legend()
    return fig


def write_ablation_bars(table: dict[str, VariantSummary], path: str | os.PathLike) -> Path:
    """:func:`ablation_bars` as a PNG at ``path`` (folders made, written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(ablation_bars(table), path)
