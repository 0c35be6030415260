"""Shared plotting helpers: one colour per DFEW class (the same in every figure) and atomic saving.

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
from tdrag.data.labels import DFEW_CLASSES

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


def class_colors(class_names: Sequence[str] = DFEW_CLASSES) -> list[str]:
    """One colour per class, fixed for DFEW's classes and taken from ``tab10`` for other names."""
    cmap = matplotlib.colormaps["tab10"]
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
