"""analysis.internals.ground_truth: masks aligned with the cached, centre-cropped clips; the centre
prior and the agreement of maps (and of the prior) with the ground truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from analysis.internals.ground_truth import (CENTRE_PRIOR, agreement_with_truth, auroc_in_mask, centre_prior,
                                             ground_truth_masks, mass_in_mask)
from tdrag.data import cache as cache_module


def _write_cache(root, source_frames: list[list[int]], size: int) -> cache_module.ClipCache:
    n, t = len(source_frames), len(source_frames[0])
    path = root / "cache"
    path.mkdir()
    np.zeros((n, t, size, size, 3), dtype=np.uint8).tofile(path / cache_module.FRAMES_FILE)
    index = [
        {"video_id": f"{i + 1:05d}", "label": 0, "source_frames": s, "num_source_frames": 6}
        for i, s in enumerate(source_frames)
    ]
    (path / cache_module.INDEX_FILE).write_text(json.dumps(index))
    manifest = {
        "format": cache_module.FORMAT_VERSION,
        "classes": ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"],
        "shape": [n, t, size, size, 3],
        "dtype": "uint8",
        "frames": t,
        "size": size,
        "keyframes": "uniform",
        "folds": {"1": {"train": [], "test": list(range(n))}},
        "skipped": [],
        "complete": True,
    }
    (path / cache_module.MANIFEST_FILE).write_text(json.dumps(manifest))
    return cache_module.open_cache(path)


def _write_masks(root, video_id: str, masks: np.ndarray) -> None:
    folder = root / "synthetic" / "masks"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{video_id}.npz", masks=masks.astype(np.uint8), apex=np.int64(0))


def test_ground_truth_masks_follow_source_frames_and_centre_crop(tmp_path):
    # Mask size 10 = cache size: no resize; one marked pixel per source frame at (k, k).
    masks = np.zeros((6, 10, 10), dtype=np.uint8)
    for k in range(6):
        masks[k, 2 + k // 2, 3 + k // 2] = 1
    _write_masks(tmp_path, "00001", masks)
    _write_masks(tmp_path, "00002", masks[::-1].copy())
    cache = _write_cache(tmp_path, [[0, 2, 5], [1, 1, 4]], size=10)
    gt = ground_truth_masks(cache, [1, 0], tmp_path, crop=6)  # rows out of order on purpose
    assert gt.shape == (2, 3, 6, 6) and gt.dtype == torch.bool
    off = 2  # (10 - 6) // 2
    # Row 0 (clip 00001), source frames 0, 2, 5 -> pixels (2,3), (3,4), (4,5), minus the offset.
    for t, k in enumerate([0, 2, 5]):
        expected = torch.zeros(6, 6, dtype=torch.bool)
        expected[2 + k // 2 - off, 3 + k // 2 - off] = True
        assert torch.equal(gt[1, t], expected)
    # Row 1 (clip 00002, masks reversed), source frames 1, 1, 4 -> original frames 4, 4, 1.
    for t, k in enumerate([4, 4, 1]):
        expected = torch.zeros(6, 6, dtype=torch.bool)
        expected[2 + k // 2 - off, 3 + k // 2 - off] = True
        assert torch.equal(gt[0, t], expected)


def test_ground_truth_masks_resize_to_the_cache_size(tmp_path):
    masks = np.zeros((2, 20, 20), dtype=np.uint8)
    masks[:, 4:12, 8:16] = 1  # an 8x8 block: 4x4 at half size, rows 2..5, cols 4..7
    _write_masks(tmp_path, "00001", masks)
    cache = _write_cache(tmp_path, [[0, 1]], size=10)
    gt = ground_truth_masks(cache.path, [0], tmp_path, crop=10)
    expected = torch.zeros(10, 10, dtype=torch.bool)
    expected[2:6, 4:8] = True
    assert torch.equal(gt[0, 0], expected) and torch.equal(gt[0, 1], expected)


def test_ground_truth_masks_name_a_missing_file_and_bad_frames(tmp_path):
    cache = _write_cache(tmp_path, [[0, 7]], size=10)
    with pytest.raises(Exception, match="00001.npz"):
        ground_truth_masks(cache, [0], tmp_path, crop=10)
    _write_masks(tmp_path, "00001", np.zeros((6, 10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match="source frames"):
        ground_truth_masks(cache, [0], tmp_path, crop=10)


def test_ground_truth_masks_on_a_generated_set_and_its_cache(tmp_path):
    """Through the real generator and cache: the masks of the kept frames, centre-cropped."""
    from tdrag.data.cache import open_cache
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset, load_clip_masks

    root = generate_dataset(tmp_path / "data", clips=2, preset="easy", seed=0, size=32)
    cache = open_cache(prepare_cache(root, tmp_path / "cache", frames=4, size=32, keyframes="redundancy",
                                     workers=1, progress=False))
    rows = np.arange(len(cache.index))
    gt = ground_truth_masks(cache, rows, root, crop=24)
    assert gt.shape == (len(rows), 4, 24, 24)
    for b, row in enumerate(rows):
        entry = cache.index[row]
        masks, _ = load_clip_masks(root, entry["video_id"])
        expected = masks[entry["source_frames"]][:, 4:28, 4:28] > 0  # (32 - 24) // 2 = 4
        assert torch.equal(gt[b], torch.from_numpy(expected))
    assert gt.any()  # the signal regions are there


def test_centre_prior_by_hand():
    """size 3: sigma 1/2, so exp(-(x^2 + y^2) / (2 sigma^2)) = exp(-2 (x^2 + y^2)) around the centre."""
    e = math.exp
    expected = torch.tensor([[e(-4), e(-2), e(-4)], [e(-2), 1.0, e(-2)], [e(-4), e(-2), e(-4)]])
    torch.testing.assert_close(centre_prior(3), expected)
    prior = centre_prior(112)
    assert prior.shape == (112, 112) and torch.equal(prior, prior.flip(0)) and torch.equal(prior, prior.T)
    assert prior[55:57, 55:57].min() == prior.max()  # the four centre pixels of an even crop


def test_agreement_with_truth_scores_each_map_and_the_prior_last():
    torch.manual_seed(0)
    masks = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    masks[:, :, 2:5, 3:6] = True
    face = torch.zeros_like(masks)
    face[:, :, 1:7, 1:7] = True
    maps = {"m": torch.rand(2, 3, 8, 8)}
    scores = agreement_with_truth(maps, masks, face, extra={"peak": lambda m, k: m.flatten(1).amax(1)})
    assert list(scores) == ["m", CENTRE_PRIOR]
    prior = centre_prior(8).expand(2, 3, 8, 8)
    for name, m in (("m", maps["m"]), (CENTRE_PRIOR, prior)):
        torch.testing.assert_close(scores[name]["mass_in_mask"], mass_in_mask(m, masks))
        torch.testing.assert_close(scores[name]["auroc"], auroc_in_mask(m, masks))
        torch.testing.assert_close(scores[name]["auroc_face"], auroc_in_mask(m, masks, within=face))
        torch.testing.assert_close(scores[name]["peak"], m.flatten(1).amax(1))
    assert torch.isnan(agreement_with_truth(maps, masks)["m"]["auroc_face"]).all()  # no face given: unknown
