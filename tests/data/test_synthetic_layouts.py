"""Synthetic sets in FERV39k's and MAFW's layouts: readers, masks by id, same seed same bytes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tdrag.data.datasets import get_reader
from tdrag.data.labels import MAFW_CLASSES
from tdrag.data.synthetic import generate_dataset, load_clip_masks, load_meta
from tdrag.data.synthetic.expressions import APEX, TIMING, apex_vector, expression_name


def _tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout", ["ferv39k", "mafw"])
def test_layout_reads_back_with_masks_and_same_bytes(tmp_path, layout):
    a = generate_dataset(tmp_path / "a", clips=14, size=32, seed=5, layout=layout)
    b = generate_dataset(tmp_path / "b", clips=14, size=32, seed=5, layout=layout)
    assert _tree(a) == _tree(b)
    meta = load_meta(a)
    assert meta["layout"] == layout
    reader = get_reader(layout)
    folds = reader.read_folds(reader.find_layout(a), strict=True)
    listed = {c.video_id: c.label for f in folds.values() for s in f.values() for c in s.clips}
    assert listed == {row["video_id"]: row["label"] for row in meta["clips"]}
    for row in meta["clips"]:
        masks, apex = load_clip_masks(a, row["video_id"])
        assert masks.shape == (row["length"], 32, 32) and apex == row["apex"]
        assert meta["classes"][row["label"]] == row["label_name"]


def test_mafw_classes_have_distinct_faces_or_timing():
    names = [expression_name(c) for c in MAFW_CLASSES]
    assert len(set(names)) == 11 and {"Contempt", "Anxiety", "Helplessness", "Disappointment"} <= set(names)
    for x, y in itertools.combinations(names, 2):
        face_gap = np.abs(apex_vector(x) - apex_vector(y)).sum()
        assert face_gap > 0.5 or TIMING[x] != TIMING[y], (x, y)
    assert set(APEX) == set(TIMING)
