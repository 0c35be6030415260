"""analysis.internals.regions: the canonical template drawn by hand, region labels aligned with the
clips, masses above each frame's floor, areas."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from analysis.internals import regions as reg
from tdrag.data.synthetic import REGIONS

R = {name: i for i, name in enumerate(REGIONS)}


def test_template_puts_the_aligned_face_landmarks_in_their_regions():
    """The five-point reference of aligned 112 px crops (ArcFace) lands in eyes, nose and mouth."""
    t = reg.canonical_region_template(112)
    assert t.shape == (112, 112) and t.dtype == np.uint8
    assert set(np.unique(t).tolist()) == {R[n] for n in ("outside", "face", "brows", "eyes", "cheeks", "nose", "mouth")}
    at = lambda x, y: REGIONS[t[int(y), int(x)]]  # noqa: E731  (pixel coordinates of the 112 px crop)
    assert at(38.29, 51.70) == at(73.53, 51.50) == "eyes"
    assert at(56.03, 69.0) == "nose"  # just above the nose tip (71.74)
    assert at(41.55, 92.37) == at(70.73, 92.20) == at(56, 92) == "mouth"
    assert at(37, 40) == at(75, 40) == "brows"
    assert at(25, 72) == at(87, 72) == "cheeks"
    assert at(56, 20) == "face" and at(2, 2) == at(110, 2) == "outside"


def test_template_areas_by_hand():
    """At 200 px the mouth is an ellipse of half-axes (34, 15): pi (a + 1/2) (b + 1/2) pixels, boundary
    included; each cheek a circle of radius 18."""
    counts = np.bincount(reg.canonical_region_template(200).ravel(), minlength=len(REGIONS))
    assert counts[R["mouth"]] == pytest.approx(math.pi * 34.5 * 15.5, rel=0.05)
    assert counts[R["cheeks"]] == pytest.approx(2 * math.pi * 18.5**2, rel=0.05)
    assert counts[R["occluder"]] == counts[R["distractor"]] == 0


def test_template_label_maps_crop_the_template_like_the_frames():
    maps = reg.template_label_maps(2, 3, size=64, crop=56)
    assert maps.shape == (2, 3, 56, 56) and maps.dtype == torch.uint8
    expected = torch.from_numpy(reg.canonical_region_template(64)[4:60, 4:60].copy())
    assert all(torch.equal(maps[b, t], expected) for b in range(2) for t in range(3))


def test_region_masses_above_each_frames_floor_and_areas():
    labels = torch.zeros(1, 2, 2, 2, dtype=torch.uint8)
    labels[0, :, 0, :] = R["eyes"]  # top row: eyes; bottom row: outside
    attention = torch.tensor([[[[0.9, 0.7], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]])  # floor 0.5; frame 1 flat
    masses = reg.region_masses(attention, labels)
    assert masses.shape == (1, len(REGIONS)) and masses.dtype == torch.float64
    expected = torch.zeros(1, len(REGIONS), dtype=torch.float64)
    expected[0, R["eyes"]] = 0.4 + 0.2  # (0.9 - 0.5) + (0.7 - 0.5); the flat frame adds nothing
    torch.testing.assert_close(masses, expected)
    signed = torch.tensor([[[[2.0, -1.0], [-3.0, 1.0]], [[0.0, 0.0], [0.0, 4.0]]]])  # a signed map: positive part
    expected = torch.zeros(1, len(REGIONS), dtype=torch.float64)
    expected[0, R["eyes"]], expected[0, R["outside"]] = 2.0, 5.0
    torch.testing.assert_close(reg.region_masses(signed, labels), expected)
    areas = reg.region_areas(labels)
    assert areas[0, R["eyes"]] == 4 and areas[0, R["outside"]] == 4 and areas.sum() == 8
    with pytest.raises(ValueError, match="differ in shape"):
        reg.region_masses(attention[:, :1], labels)


def test_face_pixels_are_the_face_and_its_parts():
    labels = torch.arange(len(REGIONS), dtype=torch.uint8).reshape(1, 1, 1, -1)
    face = reg.face_pixels(labels)
    assert face.shape == labels.shape and face.dtype == torch.bool
    assert [REGIONS[i] for i in torch.nonzero(face.flatten()).flatten().tolist()] == [
        "face", "brows", "eyes", "cheeks", "nose", "mouth"]


def test_region_label_maps_follow_source_frames_resize_and_crop(tiny_cache):
    from tdrag.data.cache import open_cache
    from tdrag.data.synthetic import load_clip_regions

    cache = open_cache(tiny_cache.cache)
    rows = [0, 3]
    maps = reg.region_label_maps(cache, rows, tiny_cache.root, crop=28)
    size = int(cache.frames.shape[2])
    assert maps.shape == (2, cache.num_frames, 28, 28) and maps.dtype == torch.uint8
    for b, row in enumerate(rows):
        entry = cache.index[row]
        drawn = load_clip_regions(tiny_cache.root, entry["video_id"])[entry["source_frames"]]
        top = (size - 28) // 2
        for t, frame in enumerate(drawn):
            expected = cv2.resize(frame, (size, size), interpolation=cv2.INTER_NEAREST)[top : top + 28, top : top + 28]
            assert np.array_equal(maps[b, t].numpy(), expected)


def test_a_run_takes_the_renderers_regions_or_else_the_template(tiny_run, tmp_path):
    from analysis.internals.run import open_run

    run = open_run(tiny_run, device="cpu", progress=False)
    labels, source = reg.run_region_maps(run, [0, 1])
    assert source == "renderer" and labels.shape == (2, run.cache.num_frames, run.crop, run.crop)
    assert (labels == R["mouth"]).any()
    real = open_run(tiny_run, device="cpu", progress=False, data_root=tmp_path)  # not a synthetic set
    labels, source = reg.run_region_maps(real, [0])
    assert source == "template"
    assert torch.equal(labels[0, 0], reg.template_label_maps(1, 1, int(run.cache.frames.shape[2]), run.crop)[0, 0])
