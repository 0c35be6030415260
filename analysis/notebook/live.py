"""Live training curves in a notebook: a ``tdrag.train.fit.fit`` callback that redraws after each epoch.

Example (notebook)::

    curves = LiveCurves(title="tdrag, fold 1")
    result = fit(config, callback=curves)     # the figure below the cell updates every epoch
    curves.frame                              # the rows seen so far, as a DataFrame

The figure is ``analysis.report.figures.plot_training_curves`` of the rows received so far (the same
figure the report draws from ``log.csv``), shown as a PNG in one display slot that is replaced,
so the output does not grow by one figure per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis.plotting import figure_png
from analysis.report.figures import plot_training_curves


class LiveCurves:
    """Callable ``callback(row)`` for ``fit``: keeps each epoch's row and redraws the curves.

    Args:
        title: figure title.
        dpi: resolution of the PNG.
        show: display in the notebook (False: only collect rows and keep ``png``).
    """

    def __init__(self, title: str | None = None, dpi: int = 80, show: bool = True) -> None:
        self.title = title
        self.dpi = dpi
        self.show = show
        self.rows: list[dict[str, Any]] = []
        self.png: bytes | None = None
        self._handle = None

    def __call__(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))
        try:
            fig = plot_training_curves(self.frame, title=self.title)
        except ValueError:
            return  # nothing plottable yet (no loss or accuracy column in the rows)
        self.png = figure_png(fig, self.dpi)
        if not self.show:
            return
        from IPython.display import Image, display

        image = Image(data=self.png, format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    @property
    def frame(self) -> pd.DataFrame:
        """The epochs seen so far, one row each."""
        return pd.DataFrame(self.rows)
