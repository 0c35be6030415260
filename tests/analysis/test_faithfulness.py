"""analysis.attribution.faithfulness and analysis.internals.ground_truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from analysis.attribution.attribute import attribute
from analysis.attribution.faithfulness import (
    blur_clips,
    completeness_gap,
    deletion_curve,
    faithfulness_scores,
    faithfulness_summary,
    insertion_curve,
    pointing_game,
    random_maps,
    randomisation_check,
    rank_average,
    ranks_of,
    relevance_mass,
    spearman,
)
from analysis.internals.ground_truth import ground_truth_masks
from tdrag.data import cache as cache_module
from tests.analysis.attribution_models import FRAME, H, RegionModel, T, W, region_clips, region_mask, tiny_conv_gru


@pytest.fixture(autouse=True)
def _seeded():
    """Every test draws the same random clips whatever ran before it."""
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# Deletion / insertion


def test_deleting_the_true_region_first_drops_faster_than_random():
    model, x = RegionModel(), region_clips(3)
    truth = region_mask().float().expand(3, T, H, W)
    rand = random_maps(truth, seed=1)
    true_del = deletion_curve(model, x, 1, truth, steps=8)
    rand_del = deletion_curve(model, x, 1, rand, steps=8)
    assert true_del.scores.shape == (3, 9) and true_del.fractions[0] == 0 and true_del.fractions[-1] == 1
    assert (true_del.auc < rand_del.auc).all()
    # Both start from the intact clip and end at the all-baseline clip.
    assert torch.allclose(true_del.scores[:, 0], rand_del.scores[:, 0])
    assert torch.allclose(true_del.scores[:, -1], rand_del.scores[:, -1])
    true_ins = insertion_curve(model, x, 1, truth, steps=8)
    rand_ins = insertion_curve(model, x, 1, rand, steps=8)
    assert (true_ins.auc > rand_ins.auc).all()
    with torch.no_grad():
        p = model(x).softmax(1)[:, 1]
    assert torch.allclose(true_ins.scores[:, -1], p, atol=1e-6)  # everything inserted = the clip


def test_frame_maps_remove_whole_frames():
    model, x = RegionModel(), region_clips(2)
    frame_map = torch.zeros(2, T)
    frame_map[:, FRAME] = 1.0
    curve = deletion_curve(model, x, 1, frame_map, steps=T)
    # After the first step only the known frame is gone, and the model depends on nothing else
    # but a 1 % global share: the score is already near its final value.
    drop_first = curve.scores[:, 0] - curve.scores[:, 1]
    drop_total = curve.scores[:, 0] - curve.scores[:, -1]
    assert (drop_first > 0.9 * drop_total).all()


def test_curve_auc_is_the_trapezoid_and_logit_scores_work():
    model, x = RegionModel(), region_clips(1)
    maps = attribute(model, x, 1, "saliency")
    curve = deletion_curve(model, x, 1, maps, steps=4, score="logit")
    f, s = curve.fractions.tolist(), curve.scores[0].tolist()
    by_hand = sum((f[i + 1] - f[i]) * (s[i] + s[i + 1]) / 2 for i in range(4))
    assert math.isclose(float(curve.auc[0]), by_hand, rel_tol=1e-5)
    with torch.no_grad():
        assert math.isclose(s[0], float(model(x)[0, 1]), rel_tol=1e-5)


def test_perturbation_curve_rejects_bad_arguments():
    model, x = RegionModel(), region_clips(1)
    with pytest.raises(ValueError, match="do not fit clips"):
        deletion_curve(model, x, 1, torch.zeros(1, T, H))
    with pytest.raises(ValueError, match="baseline"):
        deletion_curve(model, x, 1, torch.zeros(1, T), baseline="noise")


def test_blur_keeps_a_constant_clip_and_smooths_an_edge():
    flat = torch.full((1, 3, 2, 12, 12), 0.7)
    assert torch.allclose(blur_clips(flat, 1.5), flat, atol=1e-6)
    edge = torch.zeros(1, 3, 2, 12, 12)
    edge[..., 6:] = 1.0
    blurred = blur_clips(edge, 1.5)
    assert 0 < blurred[0, 0, 0, 0, 5] < 0.5 < blurred[0, 0, 0, 0, 6] < 1


def test_ranks_break_ties_randomly_but_keep_order():
    maps = torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]])
    r = ranks_of(maps, torch.Generator().manual_seed(0))
    assert r[0, 0] == 0 and r[0, 9] == 1 and sorted(r[0].tolist()) == list(range(10))
    orders = {tuple(ranks_of(maps, torch.Generator().manual_seed(s))[0, 1:9].tolist()) for s in range(5)}
    assert len(orders) > 1  # ties are not ordered by position


# ---------------------------------------------------------------------------------------------
# Pointing game / relevance mass


def _masks() -> torch.Tensor:
    masks = torch.zeros(2, 3, 6, 6, dtype=torch.bool)
    masks[:, :2, 1:3, 1:3] = True  # frames 0 and 1 have ground truth, frame 2 none
    return masks


def test_pointing_game_hits_misses_and_tolerance():
    masks = _masks()
    maps = torch.zeros(2, 3, 6, 6)
    maps[0, 0, 2, 2] = 1.0  # clip 0: frame 0 hit
    maps[0, 1, 5, 5] = 1.0  # clip 0: frame 1 far miss
    maps[0, 2, 2, 2] = 9.0  # frame 2 has no mask: ignored per frame
    maps[1, 0, 3, 3] = 1.0  # clip 1: near misses (one pixel off the mask's corner)
    maps[1, 1, 3, 1] = 1.0
    per_frame = pointing_game(maps, masks)
    assert per_frame.tolist() == [0.5, 0.0]
    assert pointing_game(maps, masks, tolerance=1).tolist() == [0.5, 1.0]
    # Per clip: clip 0's single maximum (9.0) lies on frame 2, where there is no mask.
    assert pointing_game(maps, masks, per="clip").tolist() == [0.0, 0.0]


def test_pointing_game_flat_map_scores_chance_and_empty_truth_is_nan():
    masks = _masks()
    flat = torch.ones(2, 3, 6, 6)
    assert torch.allclose(pointing_game(flat, masks), torch.full((2,), 4 / 36))
    assert math.isnan(float(pointing_game(flat[:1], torch.zeros(1, 3, 6, 6, dtype=torch.bool))[0]))
    with pytest.raises(ValueError, match="differ in shape"):
        pointing_game(flat, masks[:, :2])


def test_relevance_mass():
    masks = _masks()
    maps = torch.zeros(2, 3, 6, 6)
    maps[0, 0, 1, 1] = 3.0  # inside
    maps[0, 2, 4, 4] = 1.0  # outside
    maps[0, 1, 5, 5] = -5.0  # negative: ignored unless absolute
    maps[1] = torch.ones(3, 6, 6)
    assert torch.allclose(relevance_mass(maps, masks), torch.tensor([0.75, 8 / 108]))
    assert math.isclose(float(relevance_mass(maps, masks, absolute=True)[0]), 3 / 9, rel_tol=1e-6)
    assert math.isnan(float(relevance_mass(torch.zeros(1, 3, 6, 6), masks[:1])[0]))


# ---------------------------------------------------------------------------------------------
# Randomisation, Spearman, completeness


def test_spearman_with_ties_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 5, (200,), generator=gen).float()
    b = a + torch.randint(0, 3, (200,), generator=gen).float()
    assert math.isclose(spearman(a, b), stats.spearmanr(a.numpy(), b.numpy()).statistic, rel_tol=1e-9)
    assert rank_average(torch.tensor([10.0, 20.0, 10.0, 5.0])).tolist() == [2.5, 4.0, 2.5, 1.0]
    assert math.isnan(spearman(torch.ones(5), torch.arange(5.0)))


def test_randomisation_check_on_a_model_whose_maps_must_change():
    model = tiny_conv_gru()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, T, H, W)
    table = randomisation_check(model, x, 1, "saliency")
    assert list(table.columns) == ["step", "layer", "clip", "spearman", "spearman_abs"]
    layers = list(dict.fromkeys(table["layer"]))
    assert layers == ["fc", "gru", "layer4", "layer3", "layer2", "layer1", "stem"]
    assert len(table) == 7 * 2
    # Fully randomised, the maps have nothing left in common with the trained ones.
    last = table[table["step"] == 7]
    assert (last["spearman"].abs() < 0.5).all(), last
    first = table[table["step"] == 1]
    assert (last["spearman"].to_numpy() < first["spearman"].to_numpy()).all()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"original model changed: {k}"


def test_randomisation_check_sees_no_change_when_nothing_used_changes():
    model, x = RegionModel(), region_clips(2)
    table = randomisation_check(model, x, 1, "saliency", layers=["unused"])
    assert (table["spearman"] > 0.999999).all()
    moved = randomisation_check(model, x, 1, "saliency", layers=["fc", "layer1"])
    # A new fc only rescales this model's channels (layer1's are identical): same ranks. A new
    # layer1 moves the gradient inside the region: the ranks change.
    assert (moved[moved["step"] == 2]["spearman"] < 0.999).all()
    with pytest.raises(ValueError, match="nope"):
        randomisation_check(model, x, 1, "saliency", layers=["nope"])


def test_completeness_gap_formula_and_precomputed_maps():
    model, x = RegionModel(), region_clips(2)
    maps = attribute(model, x, 1, "integrated_gradients", n_steps=16)
    table = completeness_gap(model, x, 1, maps=maps)
    with torch.no_grad():
        diff = model(x)[:, 1] - model(torch.zeros_like(x))[:, 1]
    expected = (maps.flatten(1).sum(1) - diff).abs() / diff.abs()
    assert np.allclose(table["gap"].to_numpy(), expected.numpy(), rtol=1e-4, atol=1e-7)
    assert np.allclose(table["output_difference"].to_numpy(), diff.numpy(), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Summary


def test_faithfulness_summary_per_method_and_class():
    model, x = RegionModel(), region_clips(4)
    labels = torch.tensor([1, 1, 1, 1])
    masks = region_mask().expand(4, T, H, W)
    methods = {"saliency": {}, "integrated_gradients": {"n_steps": 8}, "frame_ablation": {}}
    scores = faithfulness_scores(model, x, labels, methods, masks=masks, steps=4, batch_size=2, progress=False)
    assert set(scores["method"]) == {"saliency", "integrated_gradients", "frame_ablation", "random"}
    assert len(scores) == 4 * 4
    sal = scores[scores["method"] == "saliency"]
    rnd = scores[scores["method"] == "random"]
    assert (sal["pointing_game"] == 1.0).all() and (sal["relevance_mass"] > 0.5).all()
    assert sal["deletion_auc"].mean() < rnd["deletion_auc"].mean()
    assert scores[scores["method"] == "frame_ablation"]["pointing_game"].isna().all()
    assert scores[scores["method"] == "integrated_gradients"]["completeness_gap"].notna().all()

    summary = faithfulness_summary(
        model, x, labels, ["saliency"], masks=masks, steps=4, batch_size=4, include_random=False, progress=False
    )
    assert list(summary.columns) == [
        "method", "class", "n", "deletion_auc", "insertion_auc", "pointing_game", "relevance_mass", "completeness_gap"
    ]
    assert summary["class"].tolist() == ["Sad", "all"]  # label 1 is Sad in DFEW order
    assert summary["n"].tolist() == [4, 4]


# ---------------------------------------------------------------------------------------------
# Ground-truth masks


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
