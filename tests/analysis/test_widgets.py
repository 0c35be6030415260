"""The class explorer's logic: setting a dropdown changes the options and the images it should.

A tiny synthetic cache (14 clips, 4 keyframes of 32 px) and untrained tiny models: the widget
wiring is under test, not the model, so nothing is trained.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.widgets import INPUT_STAGE, ClassExplorer
from tdrag.data.cache import open_cache, prepare_cache
from tdrag.data.synthetic import generate_dataset
from tdrag.models import build_model

PNG = b"\x89PNG\r\n\x1a\n"
SMALL_OPTIONS = {"integrated_gradients": {"n_steps": 2}}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("explorer")
    generate_dataset(root / "data", clips=14, preset="easy", seed=0, size=32)
    prepare_cache(root / "data", root / "cache", frames=4, size=32, workers=0, progress=False)
    return open_cache(root / "cache")


def tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=7, width=4, gru_hidden=8).eval()


@pytest.fixture(scope="module")
def explorer(cache):
    rows = np.arange(len(cache))  # every clip: two per class
    return ClassExplorer(tiny("tdrag"), cache, rows, crop=32, methods=["attention", "gradcam", "integrated_gradients"],
                         attribution_options=SMALL_OPTIONS, dpi=40)


def images(e: ClassExplorer) -> tuple[bytes, bytes, bytes]:
    # ipywidgets keeps Image.value as a memoryview; compare bytes.
    return bytes(e.strip_image.value), bytes(e.trajectory_image.value), bytes(e.probability_image.value)


def test_initial_view(explorer, cache):
    classes = [value for _, value in explorer.class_select.options]
    assert classes == sorted(set(cache.labels.tolist()))
    first = explorer.class_select.value
    # Clip options are the clips of the selected class, and the images are PNGs.
    assert all(explorer.labels[i] == first for _, i in explorer.clip_select.options)
    assert all(img.startswith(PNG) for img in images(explorer))
    vid = explorer.result.video_ids[explorer.clip_select.value]
    assert vid in explorer.title.value
    assert explorer.stage_select.options == tuple(explorer.result.attention)


def test_class_change_updates_clips_title_and_images(explorer):
    before_images, before_title = images(explorer), explorer.title.value
    old_class = explorer.class_select.value
    new_class = next(v for _, v in explorer.class_select.options if v != old_class)
    explorer.class_select.value = new_class
    options = [i for _, i in explorer.clip_select.options]
    assert options and all(explorer.labels[i] == new_class for i in options)
    assert explorer.clip_select.value == options[0]
    assert explorer.title.value != before_title
    assert explorer.class_names[new_class] in explorer.title.value
    after = images(explorer)
    assert all(a != b for a, b in zip(after, before_images)), "every panel shows the new clip"


def test_clip_change_redraws(explorer):
    if len(explorer.clip_select.options) < 2:
        pytest.skip("class has a single clip")
    before = images(explorer)
    explorer.clip_select.value = explorer.clip_select.options[1][1]
    after = images(explorer)
    assert after[0] != before[0] and after[2] != before[2]


def test_method_change_sets_stages_and_redraws_only_the_strip(explorer):
    explorer.method_select.value = "attention"
    strip, trajectory, probabilities = images(explorer)
    explorer.method_select.value = "gradcam"
    assert list(explorer.stage_select.options) == ["layer1", "layer2", "layer3", "layer4"]
    assert not explorer.stage_select.disabled
    assert bytes(explorer.strip_image.value) != strip
    # Trajectory and probabilities depend on the clip only.
    assert bytes(explorer.trajectory_image.value) == trajectory
    assert bytes(explorer.probability_image.value) == probabilities
    gradcam = bytes(explorer.strip_image.value)
    explorer.method_select.value = "integrated_gradients"
    assert explorer.stage_select.options == (INPUT_STAGE,)
    assert explorer.stage_select.disabled
    assert bytes(explorer.strip_image.value) != gradcam
    assert explorer.status.value == ""


def test_stage_change_redraws_strip(explorer):
    explorer.method_select.value = "attention"
    explorer.stage_select.value = explorer.stage_select.options[0]
    first = bytes(explorer.strip_image.value)
    explorer.stage_select.value = explorer.stage_select.options[-1]
    assert bytes(explorer.strip_image.value) != first
    explorer.method_select.value = "gradcam"
    explorer.stage_select.value = "layer2"
    layer2 = bytes(explorer.strip_image.value)
    explorer.stage_select.value = "layer4"
    assert bytes(explorer.strip_image.value) != layer2


def test_maps_are_computed_once(explorer, monkeypatch):
    i = explorer.index
    first = explorer.overlay(i, "gradcam", "layer3")
    assert first.shape == (4, 32, 32)
    import analysis.widgets as widgets

    def fail(*args, **kwargs):
        raise AssertionError("attribute called again for a cached map")

    monkeypatch.setattr(widgets, "attribute", fail)
    assert explorer.overlay(i, "gradcam", "layer3") is first


def test_attention_overlay_matches_inspection(explorer):
    # The overlay of method "attention" is the model's own map, in (0, 1) at frame size.
    i = explorer.index
    stage = list(explorer.result.attention)[0]
    m = explorer.overlay(i, "attention", stage)
    assert m.shape == (4, 32, 32)
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    x = explorer.clip_input(i)
    with torch.no_grad():
        direct = explorer.model.inspect(x).attention[stage]
    assert torch.allclose(m.mean(), direct.mean(), atol=0.05)


def test_failing_method_reports_in_status(explorer, monkeypatch):
    import analysis.widgets as widgets

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(widgets, "attribute", broken)
    explorer._maps.clear()
    explorer.method_select.value = "attention"
    explorer.method_select.value = "integrated_gradients"
    assert "out of memory" in explorer.status.value
    assert bytes(explorer.strip_image.value).startswith(PNG)
    explorer._maps.clear()


def test_model_without_gru_or_attention(cache):
    rows = np.arange(len(cache))
    no_gru = ClassExplorer(tiny("tdrag_no_gru"), cache, rows, crop=32, methods=["attention"], dpi=40)
    assert no_gru.trajectories is None
    assert no_gru.step_probabilities.shape == (len(rows), 1, 7)
    assert bytes(no_gru.trajectory_image.value).startswith(PNG)
    r3d = tiny("r3d18")
    with pytest.raises(ValueError, match="no attention"):
        ClassExplorer(r3d, cache, rows, crop=32, methods=["attention"], dpi=40)
    default = ClassExplorer(r3d, cache, rows[:2], crop=32, methods=None, dpi=40)
    assert "attention" not in default.methods and default.method_select.value == "gradcam"


def test_bad_arguments(cache):
    model = tiny("tdrag")
    with pytest.raises(ValueError, match="frame"):
        ClassExplorer(model, cache, np.arange(2), crop=32, methods=["frame_ablation"])
    with pytest.raises(ValueError, match="unknown method"):
        ClassExplorer(model, cache, np.arange(2), crop=32, methods=["lime"])
    with pytest.raises(ValueError, match="no rows"):
        ClassExplorer(model, cache, np.arange(0), crop=32)
