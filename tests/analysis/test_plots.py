"""analysis.plotting: class colours and atomic figure saving."""

from __future__ import annotations

import pytest

from analysis.plotting import class_colors, new_figure, save_figure
from tdrag.data.labels import DFEW_CLASSES


def test_class_colours_are_fixed_per_dfew_class_and_distinct():
    colours = class_colors(DFEW_CLASSES)
    assert len(set(colours)) == len(DFEW_CLASSES)
    # Fixed by name, not by position: a subset keeps each class's colour.
    assert class_colors(["Fear", "Happy"]) == [colours[6], colours[0]]
    other = class_colors(["a", "b", "c"])
    assert len(set(other)) == 3 and all(c.startswith("#") for c in other)


def test_save_figure_writes_png_atomically(tmp_path):
    fig = new_figure(2, 2)
    fig.subplots().plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / "f.png", dpi=30)
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.png"]

    class Broken:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        save_figure(Broken(), tmp_path / "sub" / "g.png")
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.png"]  # no temp file left
