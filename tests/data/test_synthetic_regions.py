"""Facial-region label maps of the synthetic set: one face drawn by hand, agreement with the union
masks, occluders and distractors labelled, files written and read, old sets without them."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pytest

from tdrag.data.synthetic import REGIONS, SynthError, generate_dataset, load_clip_masks, load_clip_regions, load_meta, render_clip
from tdrag.data.synthetic.faces import Identity, face_geometry, EXPRESSION_PARAMS
from tdrag.data.synthetic.presets import PRESETS
from tdrag.data.synthetic.regions import DISTRACTOR, OCCLUDER, draw_face_regions

R = {name: i for i, name in enumerate(REGIONS)}
PARTS = [R[g] for g in ("brows", "eyes", "cheeks", "nose", "mouth")]


def test_region_names_and_labels():
    assert REGIONS == ("outside", "face", "brows", "eyes", "cheeks", "nose", "mouth", "occluder", "distractor")
    assert (OCCLUDER, DISTRACTOR) == (7, 8)


def test_a_neutral_face_drawn_by_hand():
    """A 100 px canvas, so canvas fractions read as pixels. Face ellipse centre (50, 53), half-axes
    (30, 38); eyes at (38, 45) and (62, 45); brows' middle points at (39, 35.2); cheeks at (33.5, 60);
    nose ellipse centre (50, 53), half-axes (5.5, 7.5); mouth centre (50, 69), half-axes (12.5, 3.5)."""
    identity = Identity(skin=(0, 0, 0), hair=(0, 0, 0), iris=(0, 0, 0), background=((0, 0, 0), (0, 0, 0)),
                        face_w=0.30, face_h=0.38, eye_dx=0.12, eye_y=0.45, mouth_w=0.095, brow_thick=0.022)
    rest = face_geometry(identity, np.zeros((1, len(EXPRESSION_PARAMS))), 100)
    labels = np.full((100, 100), 255, dtype=np.uint8)
    draw_face_regions(labels, identity, rest, rest, 0)
    at = lambda x, y: REGIONS[labels[y, x]]  # noqa: E731
    assert at(38, 45) == at(62, 45) == "eyes"
    assert at(39, 35) == at(61, 35) == "brows"
    assert at(33, 60) == at(67, 60) == "cheeks"
    assert at(50, 55) == "nose"
    assert at(50, 69) == at(40, 69) == "mouth"
    assert at(50, 22) == at(50, 85) == at(25, 53) == "face"  # forehead, chin, cheekbone edge
    assert at(2, 2) == at(50, 95) == at(15, 53) == "outside"
    counts = np.bincount(labels.ravel(), minlength=len(REGIONS))
    assert counts.sum() == 100 * 100 and counts[OCCLUDER] == counts[DISTRACTOR] == 0
    # Areas: a filled ellipse of half-axes (a, b) takes its boundary pixels too, about pi (a + 1/2) (b + 1/2).
    area = lambda a, b: math.pi * (a + 0.5) * (b + 0.5)  # noqa: E731
    assert counts[R["mouth"]] == pytest.approx(area(12.5, 3.5), rel=0.06)
    assert counts[R["cheeks"]] == pytest.approx(2 * area(6.5, 6.5), rel=0.06)  # two circles of radius 6.5
    assert counts[R["face"]] + counts[PARTS].sum() == pytest.approx(area(30, 38), rel=0.02)  # every part lies on the face
    assert 0.85 * area(5.5, 7.5) < counts[R["nose"]] < area(5.5, 7.5)  # its upper corners go to the eyes, painted later


@pytest.fixture(scope="module")
def busy_root(tmp_path_factory):
    """`medium` with an occluder and distractors in every clip."""
    preset = dataclasses.replace(PRESETS["medium"], occlusion_prob=1.0, distractor_prob=1.0, distractors=2)
    return generate_dataset(tmp_path_factory.mktemp("regions") / "data", clips=14, preset=preset, seed=2, size=48)


def test_regions_are_written_beside_the_masks_and_agree_with_them(busy_root):
    occluded = distracted = 0
    for row in load_meta(busy_root)["clips"]:
        regions = load_clip_regions(busy_root, row["video_id"])
        masks, _ = load_clip_masks(busy_root, row["video_id"])
        assert regions.shape == masks.shape == (row["length"], 48, 48) and regions.dtype == np.uint8
        assert regions.max() < len(REGIONS)
        # A signal pixel shows a face part (or a distractor drawn over it), never skin, background or an occluder.
        inside = np.unique(regions[masks > 0])
        assert set(inside.tolist()) <= set(PARTS) | {DISTRACTOR}, (row["video_id"], inside)
        assert not masks[regions == OCCLUDER].any()  # an occluder hides the signal
        occluded += int((regions == OCCLUDER).any())
        distracted += int((regions == DISTRACTOR).any())
        assert (regions == R["face"]).any() and (regions == R["outside"]).any()
    assert occluded >= 10 and distracted >= 10


def test_render_clip_gives_the_written_regions(busy_root):
    row = load_meta(busy_root)["clips"][3]
    preset = dataclasses.replace(PRESETS["medium"], occlusion_prob=1.0, distractor_prob=1.0, distractors=2)
    clip = render_clip(2, 3, row["label"], preset, 48)
    assert np.array_equal(clip.regions, load_clip_regions(busy_root, row["video_id"]))


def test_a_set_without_region_maps_still_reads_its_masks(busy_root, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(busy_root, old)
    shutil.rmtree(old / "synthetic" / "regions")  # as rendered before region maps existed
    vid = load_meta(old)["clips"][0]["video_id"]
    masks, _ = load_clip_masks(old, vid)
    assert masks.shape[0] == load_meta(old)["clips"][0]["length"]
    with pytest.raises(SynthError, match="no region maps .* render it again"):
        load_clip_regions(old, vid)
