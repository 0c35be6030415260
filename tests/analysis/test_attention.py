"""analysis.internals.attention: upsampling shapes, mass-in-mask on hand-made maps, class means, figures."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from analysis.internals import attention as att
from analysis.internals.ground_truth import CENTRE_PRIOR, auroc_in_mask, centre_prior, mass_in_mask
from tdrag.data.labels import DFEW_CLASSES
from tdrag.models.inspection import upsample_attention
from tdrag.models.registry import build_model


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("tdrag", width=8, gru_hidden=16).eval()


def test_upsample_shapes_range_and_constant_maps():
    maps = torch.rand(2, 1, 4, 8, 8)
    up = upsample_attention(maps, (8, 32, 32))
    assert up.shape == (2, 8, 32, 32)
    assert up.min() >= maps.min() - 1e-6 and up.max() <= maps.max() + 1e-6
    # A constant map stays constant; a 4-D input (B, T', H', W') is accepted too.
    const = upsample_attention(torch.full((1, 2, 3, 3), 0.7), (4, 12, 12))
    torch.testing.assert_close(const, torch.full((1, 4, 12, 12), 0.7))
    with pytest.raises(ValueError, match="B, 1"):
        upsample_attention(torch.rand(2, 3, 4, 8, 8), (8, 32, 32))


def test_upsampling_keeps_a_blob_where_it_was():
    maps = torch.zeros(1, 1, 2, 4, 4)
    maps[0, 0, :, 0, 3] = 1.0  # top-right cell
    up = upsample_attention(maps, (4, 16, 16))[0]
    peak = np.unravel_index(int(up[0].argmax()), (16, 16))
    assert peak[0] < 4 and peak[1] >= 12


def test_mass_in_mask_on_hand_made_maps():
    maps = torch.full((3, 2, 8, 8), 0.01)
    masks = torch.zeros(3, 2, 8, 8, dtype=torch.bool)
    # Clip 0: attention exactly on the mask -> share 1.
    maps[0] = 0.0
    maps[0, :, 2:4, 2:4] = 0.9
    masks[0, :, 2:4, 2:4] = True
    # Clip 1: uniform attention -> share = mask area fraction (16 of 64 pixels per frame).
    maps[1] = 0.5
    masks[1, :, :4, :4] = True
    # Clip 2: attention entirely outside the mask -> share 0.
    maps[2] = 0.0
    maps[2, :, 6:, 6:] = 1.0
    masks[2, :, :2, :2] = True
    share = mass_in_mask(maps, masks)
    torch.testing.assert_close(share, torch.tensor([1.0, 0.25, 0.0]))
    with pytest.raises(ValueError, match="differ in shape"):
        mass_in_mask(maps, masks[:, :1])
    # No ground truth, or no mass: undefined, not 0.
    assert torch.isnan(mass_in_mask(maps[:1], torch.zeros_like(masks[:1]))).all()
    assert torch.isnan(mass_in_mask(torch.zeros(1, 2, 8, 8), masks[:1])).all()


def test_auroc_in_mask_equals_scikit_learn_per_frame():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(3)
    maps = torch.rand(3, 4, 9, 9, generator=g)
    maps[0] = (maps[0] * 4).round() / 4  # many ties: they count one half
    masks = torch.rand(3, 4, 9, 9, generator=g) > 0.7
    masks[1, 0] = False  # an empty mask is not scored
    masks[1, 1] = True  # nor is a full one
    masks[2] = False  # a clip with nothing to score: NaN
    got = auroc_in_mask(maps, masks)
    for b in range(2):
        frames = [t for t in range(4) if 0 < int(masks[b, t].sum()) < 81]
        expected = np.mean([roc_auc_score(masks[b, t].ravel().numpy(), maps[b, t].ravel().numpy()) for t in frames])
        assert got[b].item() == pytest.approx(expected, abs=1e-6)
    assert torch.isnan(got[2])


def test_auroc_within_a_region_ignores_the_pixels_outside_it():
    from sklearn.metrics import roc_auc_score

    g = torch.Generator().manual_seed(5)
    maps = torch.rand(2, 3, 8, 8, generator=g)
    masks = torch.rand(2, 3, 8, 8, generator=g) > 0.6
    within = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    within[..., 1:7, 2:8] = True
    got = auroc_in_mask(maps, masks, within=within)
    for b in range(2):
        expected = np.mean([roc_auc_score(masks[b, t][within[b, t]].numpy(), maps[b, t][within[b, t]].numpy())
                            for t in range(3)])
        assert got[b].item() == pytest.approx(expected, abs=1e-6)
    # A map that is high only outside the region changes nothing.
    louder = maps.clone()
    louder[~within] = 10.0
    torch.testing.assert_close(auroc_in_mask(louder, masks, within=within), got)


def test_auroc_in_mask_hand_cases():
    masks = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    masks[:, :, :2, :2] = True
    maps = torch.zeros(3, 1, 4, 4)
    maps[0, :, :2, :2] = 1.0  # above every other pixel: 1
    maps[1] = 0.5  # flat: every pair ties, 0.5
    maps[2, :, 2:, 2:] = 1.0  # higher outside only: the signal pixels tie with 8 of the 12 others
    torch.testing.assert_close(auroc_in_mask(maps, masks), torch.tensor([1.0, 0.5, 4 * (8 * 0.5) / (4 * 12)]))
    # A floor under the map (1 + M) changes nothing; a negative attribution counts by size with absolute.
    torch.testing.assert_close(auroc_in_mask(1 + maps, masks), auroc_in_mask(maps, masks))
    assert auroc_in_mask(-maps[:1], masks[:1], absolute=True).item() == 1.0


def test_attention_and_attribution_share_one_mass_in_mask():
    from analysis.attribution.faithfulness import relevance_mass

    torch.manual_seed(0)
    maps = torch.randn(4, 2, 6, 6)
    masks = torch.rand(4, 2, 6, 6) > 0.6
    torch.testing.assert_close(relevance_mass(maps, masks), mass_in_mask(maps, masks))
    expected = (maps.clamp(min=0) * masks).flatten(1).sum(1) / maps.clamp(min=0).flatten(1).sum(1)
    torch.testing.assert_close(mass_in_mask(maps, masks), expected)


def test_mass_in_mask_table_per_class_with_chance_level():
    table = att.mass_in_mask_table([1.0, 0.5, 0.25, 0.75], [0, 0, 2, 2], [0.25, 0.25, 0.5, 0.5],
                                   class_names=["a", "b", "c"], aurocs=[0.9, 0.7, float("nan"), 0.6], aurocs_face=[0.5, 0.7, 0.1, 0.3])
    assert list(table.index) == ["a", "c", "all"]  # class "b" has no clips
    assert table.loc["a", "auroc"] == pytest.approx(0.8)
    assert table.loc["c", "auroc"] == pytest.approx(0.6)  # a clip without a frame to score is left out
    assert table.loc["all", "auroc"] == pytest.approx(2.2 / 3)
    assert table.loc["a", "auroc_face"] == pytest.approx(0.6) and table.loc["all", "auroc_face"] == pytest.approx(0.4)
    assert table.loc["a", "mass_in_mask"] == pytest.approx(0.75)
    assert table.loc["a", "ratio"] == pytest.approx(3.0)
    assert table.loc["c", "mass_in_mask"] == pytest.approx(0.5)
    assert table.loc["all", "clips"] == 4
    assert table.loc["all", "mask_area"] == pytest.approx(0.375)


def test_mean_attention_per_class():
    maps = torch.stack([torch.full((1, 2, 3, 3), v) for v in (0.2, 0.4, 0.9)])  # (3, 1, 2, 3, 3)
    means, counts = att.mean_attention_per_class(maps, [1, 1, 0], num_classes=3)
    assert means.shape == (3, 2, 3, 3)
    assert counts.tolist() == [1, 2, 0]
    torch.testing.assert_close(means[0], torch.full((2, 3, 3), 0.9))
    torch.testing.assert_close(means[1], torch.full((2, 3, 3), 0.3))
    assert torch.isnan(means[2]).all()


def test_attention_maps_of_a_real_tiny_model():
    model = tiny_model()
    x = torch.randn(2, 3, 8, 32, 32)
    maps = att.attention_maps(model, x)
    assert set(maps) == {"layer2", "layer3", "layer4"}
    for m in maps.values():
        assert m.shape == (2, 8, 32, 32)
        assert torch.isfinite(m).all() and m.min() >= 0 and m.max() <= 1
    only = att.attention_maps(model, x, stages=["layer3"])
    assert list(only) == ["layer3"]
    with pytest.raises(KeyError, match="layer1"):
        att.attention_maps(model, x, stages=["layer1"])


def test_attention_maps_refuses_a_model_without_attention():
    model = build_model("tdrag_no_attention", width=8, gru_hidden=16).eval()
    with pytest.raises(ValueError, match="no attention"):
        att.attention_maps(model, torch.randn(1, 3, 8, 32, 32))


def test_keyframe_strip_and_class_mean_figures():
    model = tiny_model()
    x = torch.randn(1, 3, 8, 32, 32)
    maps = att.attention_maps(model, x)
    fig = att.plot_keyframe_strip(x[0], {k: v[0] for k, v in maps.items()}, frames=[0, 3, 7], title="clip 1")
    assert isinstance(fig, Figure)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 1 + 3  # input row + one row per stage, each the 3 keyframes side by side
    assert [text.get_text() for text in image_axes[0].get_xticklabels()] == ["frame 0", "frame 3", "frame 7"]
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    assert [ax.get_ylabel() for ax in image_axes] == ["input", "layer2", "layer3", "layer4"]
    # Each overlay is the map through jet at half opacity over the frame (what imshow draws).
    shown = np.asarray(image_axes[2].images[0].get_array())[:, :32]
    frame = att.display_images(x[0])[0]
    expected = 0.5 * frame + 0.5 * matplotlib.colormaps["jet"](maps["layer3"][0, 0].numpy())[..., :3]
    np.testing.assert_allclose(shown, expected, atol=1e-6)
    # Stage-resolution maps are upsampled by the figure itself: 8 keyframes of 32 px and 7 gaps of 2.
    raw = model.inspect(x).attention
    fig = att.plot_keyframe_strip(x[0], {k: v[0].detach() for k, v in raw.items()})
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images] == [(32, 8 * 32 + 7 * 2, 3)] * 4
    means, counts = att.mean_attention_per_class(maps["layer3"].repeat(3, 1, 1, 1), [0, 0, 2], num_classes=7)
    fig = att.plot_class_mean_attention(means, counts, class_names=DFEW_CLASSES)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "Happy (n=2)" in titles and "Sad (n=0)" in titles


def test_display_images_shows_uint8_frames_as_they_are():
    frames = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    images = att.display_images(frames)
    np.testing.assert_allclose(images, frames / 255.0, rtol=0, atol=1e-7)
    fig = att.plot_keyframe_strip(frames, {"layer3": torch.rand(8, 32, 32)}, frames=[0, 7])
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown[:, :32], frames[0] / 255.0, atol=1e-7)
    np.testing.assert_allclose(shown[:, 34:], frames[7] / 255.0, atol=1e-7)
    with pytest.raises(ValueError, match="T, H, W, 3"):
        att.display_images(frames[..., :2])


def test_select_keyframes_to_show():
    assert att.select_keyframes_to_show(5, 8) == [0, 1, 2, 3, 4]
    shown = att.select_keyframes_to_show(16, 4)
    assert shown[0] == 0 and shown[-1] == 15 and len(shown) == 4


@pytest.fixture(scope="module")
def synthetic_cache(tmp_path_factory):
    """7 easy synthetic clips (with ground-truth masks) and their 8-frame cache at S=40."""
    from tdrag.data.cache import open_cache
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    data = generate_dataset(root / "data", clips=7, preset="easy", seed=0, size=48)
    cache = prepare_cache(data, root / "cache", frames=8, size=40, keyframes="uniform", workers=1, progress=False)
    return data, open_cache(cache)


def test_attention_in_ground_truth_scores_oracle_uniform_and_real_maps(synthetic_cache):
    from analysis.internals.ground_truth import ground_truth_masks
    from analysis.internals.run import SplitInspection, inspect_split

    data, cache = synthetic_cache
    crop = 32
    rows = np.arange(len(cache))
    masks = ground_truth_masks(cache, rows, data, crop)  # (N, 8, 32, 32) bool
    assert masks.any()
    # An oracle whose attention is the mask itself (at frame resolution) puts all its mass inside;
    # a uniform map gets exactly the mask's area. chunk=3 exercises the chunked pass.
    inspection = SplitInspection(
        video_ids=[cache.index[r]["video_id"] for r in rows], rows=rows, labels=cache.labels[rows],
        logits=torch.zeros(len(rows), 7),
        attention={"oracle": masks.float().unsqueeze(1), "uniform": torch.full((len(rows), 1, 4, 8, 8), 0.5)},
    )
    table = att.attention_in_ground_truth(inspection, cache, data, crop, chunk=3)
    assert table.index.names == ["stage", "class"]
    oracle, uniform = table.loc["oracle"], table.loc["uniform"]
    np.testing.assert_allclose(oracle["mass_in_mask"], 1.0)
    np.testing.assert_allclose(uniform["mass_in_mask"], uniform["mask_area"], rtol=1e-5)
    np.testing.assert_allclose(uniform["ratio"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(oracle["auroc"], 1.0)  # every mask pixel above every other
    np.testing.assert_allclose(uniform["auroc"], 0.5)  # a flat map ranks nothing: chance
    np.testing.assert_allclose(oracle["auroc_face"], 1.0)  # the same within the face
    np.testing.assert_allclose(uniform["auroc_face"], 0.5)
    assert oracle.loc["all", "clips"] == len(rows)
    expected_area = masks.flatten(1).float().mean(1).mean().item()
    assert oracle.loc["all", "mask_area"] == pytest.approx(expected_area, rel=1e-5)
    # The centre prior comes last, scored as a map that knows no model: the same figures as
    # ground_truth's functions give on the fixed Gaussian directly.
    assert list(table.index.get_level_values("stage").unique()) == ["oracle", "uniform", CENTRE_PRIOR]
    from analysis.internals.regions import face_pixels, region_label_maps

    prior = centre_prior(crop).expand_as(masks)
    face = face_pixels(region_label_maps(cache, rows, data, crop))
    reference = table.loc[CENTRE_PRIOR].loc["all"]
    assert reference["auroc"] == pytest.approx(float(np.nanmean(auroc_in_mask(prior, masks).numpy())), rel=1e-6)
    assert reference["auroc_face"] == pytest.approx(
        float(np.nanmean(auroc_in_mask(prior, masks, within=face).numpy())), rel=1e-6)
    assert reference["mass_in_mask"] == pytest.approx(float(mass_in_mask(prior, masks).mean()), rel=1e-6)
    assert reference["auroc"] > reference["auroc_face"]  # a central blob wins against the background, not the face
    # A real model's maps give shares in [0, 1] for every stage; the class names are the cache's.
    real = inspect_split(tiny_model(), cache, rows, crop=crop, batch_size=4, progress=False)
    table = att.attention_in_ground_truth(real, cache, data, crop)
    assert set(table.index.get_level_values("stage")) == {"layer2", "layer3", "layer4", CENTRE_PRIOR}
    assert set(table.index.get_level_values("class")) <= {*cache.class_names, "all"}
    assert table["mass_in_mask"].between(0, 1).all() and table["auroc"].between(0, 1).all()


def test_mean_attention_refuses_labels_out_of_range():
    with pytest.raises(ValueError, match=r"0\.\.2"):
        att.mean_attention_per_class(torch.rand(2, 1, 2, 3, 3), [0, 3], num_classes=3)
