"""The lowest layer of analysis: one colour per class (the same in every figure), pyplot-free figures,
atomic saving, PNG bytes, and class lookup by name. Every subpackage may import it; it imports none.

Library code never calls ``plt.show``; it builds ``matplotlib.figure.Figure`` objects directly
(no pyplot state), so figures made in a loop are freed when dropped and scripts need no backend
switch. Notebooks display a returned Figure by ending a cell with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

from matplotlib.figure import Figure

from tdrag.atomic import atomic_path

# Fixed colours per DFEW class (Okabe-Ito colour-blind-safe palette, ordered so that classes that
# are easily confused -- Sad/Neutral, Angry/Disgust, Surprise/Fear -- get contrasting hues).
_DFEW_COLOURS: dict[str, str] = {
    "Happy": "#E69F00",  # orange
    "Sad": "#0072B2",  # blue
    "Neutral": "#7F7F7F",  # grey
    "Angry": "#D55E00",  # vermilion
    "Surprise": "#56B4E9",  # sky blue
    "Disgust": "#009E73",  # green
    "Fear": "#CC79A7",  # purple
}


def class_colors(class_names: Sequence[str]) -> list[str]:
    """One colour per class of ``class_names`` (the run's, in label order): fixed by name for DFEW's
    (and FERV39k's) seven classes, by position from ``tab10`` for other names (``tab20`` past ten
    classes, so that MAFW's eleven stay distinct)."""
    cmap = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    return [
        _DFEW_COLOURS.get(name, matplotlib.colors.to_hex(cmap(i % cmap.N)))
        for i, name in enumerate(class_names)
    ]


def new_figure(width: float, height: float, **kwargs) -> Figure:
    """A pyplot-free Figure (no global state, nothing to close) with a constrained layout."""
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=(width, height), **kwargs)


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        # The temp name ends in ".tmp", so the format must be given explicitly.
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib Figure (for ipywidgets.Image and IPython.display.Image)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def message_figure(text: str, width: float = 5.2, height: float = 3.6) -> Figure:
    """A blank figure carrying one message (e.g. "this model has no GRU")."""
    fig = new_figure(width, height)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11)
    return fig


def class_index(name_or_index: str | int, class_names: Sequence[str]) -> int:
    """``"Happy"`` / ``"happy"`` / ``0`` -> 0 in ``class_names``; ValueError listing the names otherwise."""
    import numpy as np

    if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
        if not 0 <= int(name_or_index) < len(class_names):
            raise ValueError(f"class index {name_or_index} out of range 0..{len(class_names) - 1}")
        return int(name_or_index)
    lowered = [n.lower() for n in class_names]
    if str(name_or_index).lower() not in lowered:
        raise ValueError(f"unknown class {name_or_index!r}; expected one of {', '.join(class_names)}")
    return lowered.index(str(name_or_index).lower())


class Note(str):
    """A line of Markdown that notebooks display as such (e.g. why a view is empty for this model):
    returned where a figure or a table cannot be, so that notebook cells need no ``if``."""

    def _repr_markdown_(self) -> str:
        return str(self)
