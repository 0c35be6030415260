"""The class explorer's logic: setting a dropdown changes the options and the images it should.

A tiny synthetic cache (14 clips, 4 keyframes of 32 px) and tiny models with randomised weights
(attention mask branches included, so the maps are not the flat ~0.5 of an init): the widget wiring
is under test, not the model, so nothing is trained.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.internals.run import Run
from analysis.notebook.widgets import INPUT_STAGE, ClassExplorer
from tdrag.config import Config, DataConfig, HeadConfig, ModelConfig
from tdrag.data.cache import open_cache
from tdrag.data.prepare import prepare_cache
from tdrag.data.synthetic import generate_dataset
from tdrag.models.inspection import upsample_attention
from tdrag.models.registry import build_model
from tdrag.models.tdrag import ResidualAttention3d
from tdrag.runs.checkpoints import CheckpointChoice

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
    model = build_model(name, num_classes=7, width=4, gru_hidden=8)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ResidualAttention3d):
                module.logits.weight.normal_(0.0, 1.0)  # spatially varying maps, not the init's ~0.5
    return model.eval()


def make_run(model, cache, rows) -> Run:
    """An opened run over cache ``rows`` (built directly: no run directory needed)."""
    rows = np.asarray(rows, dtype=np.int64)
    config = Config(data=DataConfig(frames=4, size=32, crop=32), model=ModelConfig(name="tdrag", width=4, head=HeadConfig(hidden=8)))
    choice = CheckpointChoice(path=None, name="last", epoch=2, selection="last", reason="checkpoints/last.pt (epoch 2, the last epoch)")
    return Run(run_dir="mem", model=model, config=config, checkpoint=choice, cache=cache, split="test", rows=rows,
               labels=np.asarray(cache.labels)[rows], video_ids=[cache.index[r]["video_id"] for r in rows],
               class_names=tuple(cache.class_names), device=torch.device("cpu"), progress=False)


def explore(model, cache, rows, **kwargs) -> ClassExplorer:
    return ClassExplorer(make_run(model, cache, rows), dpi=40, **kwargs)


@pytest.fixture(scope="module")
def explorer(cache):
    rows = np.arange(len(cache))  # every clip: two per class
    return explore(tiny("tdrag"), cache, rows, methods=["attention", "gradcam", "integrated_gradients"],
                   attribution_options=SMALL_OPTIONS)


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


def test_the_animation_follows_the_selection_and_saves(explorer, tmp_path):
    from PIL import Image

    explorer.method_select.value = "attention"
    explorer.stage_select.value = explorer.stage_select.options[0]
    gif = bytes(explorer.animation_image.value)
    assert gif[:6] == b"GIF89a" and 'href="data:video/mp4;base64,' in explorer.animation_link.value
    frames = Image.open(explorer.save_animation(tmp_path / "a.gif"))
    assert frames.n_frames == explorer.run.cache.num_frames
    one_panel = frames.size[0]
    explorer.method_select.value = "gradcam"  # now: input, the deepest attention stage, Grad-CAM
    assert bytes(explorer.animation_image.value) != gif
    assert explorer.animation().frames.shape[2] == one_panel // 2 * 3
    assert explorer.save_animation(tmp_path / "a.mp4").read_bytes()[4:8] == b"ftyp"


def test_maps_are_computed_once(explorer, monkeypatch):
    i = explorer.index
    first = explorer.overlay(i, "gradcam", "layer3")
    assert first.shape == (4, 32, 32)
    import analysis.notebook.widgets as widgets

    def fail(*args, **kwargs):
        raise AssertionError("attribute called again for a cached map")

    monkeypatch.setattr(widgets, "attribute", fail)
    assert explorer.overlay(i, "gradcam", "layer3") is first


def test_attention_overlay_matches_inspection_element_wise(explorer):
    # The overlay of method "attention" is model.inspect's map of that clip, upsampled by
    # tdrag.models.inspection.upsample_attention, element by element, for every stage and several clips.
    for i in (0, 5, len(explorer.rows) - 1):
        x = explorer.clip_input(i)
        with torch.no_grad():
            direct = explorer.model.inspect(x).attention
        for stage in explorer.result.attention:
            shown = explorer.overlay(i, "attention", stage)
            expected = upsample_attention(direct[stage], x.shape[2:])[0]
            assert expected.std() > 1e-3, "a flat map would not test the upsampling"
            torch.testing.assert_close(shown, expected, rtol=1e-5, atol=1e-6)


def test_header_says_which_checkpoint_and_what_step_readouts_mean(explorer):
    from tdrag.models.inspection import step_readout_meaning

    assert "checkpoints/last.pt (epoch 2, the last epoch)" in explorer.header.value
    import html

    assert html.escape(step_readout_meaning(explorer.model, "last")) in explorer.header.value


def test_failing_method_reports_in_status(explorer, monkeypatch):
    import analysis.notebook.widgets as widgets

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
    no_gru = explore(tiny("tdrag_no_gru"), cache, rows, methods=["attention"])
    assert no_gru.trajectories is None
    assert no_gru.step_probabilities.shape == (len(rows), 1, 7)
    assert bytes(no_gru.trajectory_image.value).startswith(PNG)
    r3d = tiny("r3d18")
    with pytest.raises(ValueError, match="no attention"):
        explore(r3d, cache, rows, methods=["attention"])
    default = explore(r3d, cache, rows[:2], methods=None)
    assert "attention" not in default.methods and default.method_select.value == "gradcam"


def test_bad_arguments(cache):
    model = tiny("tdrag")
    with pytest.raises(ValueError, match="frame"):
        explore(model, cache, np.arange(2), methods=["frame_ablation"])
    with pytest.raises(ValueError, match="unknown method"):
        explore(model, cache, np.arange(2), methods=["lime"])
    with pytest.raises(ValueError, match="no clips"):
        explore(model, cache, np.arange(0))
