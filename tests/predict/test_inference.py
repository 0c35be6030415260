"""tdrag.predict (inference, drawing, output): windows, keyframes and evaluation preprocessing,
probabilities, overlays, the keyframe sheet, outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

import tdrag.predict.output as output_module
from tdrag.data.augment import eval_transform
from tdrag.data.labels import DFEW_CLASSES
from tdrag.models.registry import load_model
from tdrag.predict.drawing import (
    OVERLAY_PANEL,
    SHEET_COLUMNS,
    SHEET_PANEL,
    attention_overlay,
    keyframe_grid,
    keyframe_sheet,
    overlay_frames,
    sheet_captions,
)
from tdrag.predict.faces import extract_face_clip
from tdrag.predict.inference import predict_face_clip, predict_video, window_bounds
from tdrag.predict.output import prediction_to_dict, write_prediction
from tdrag.predict.video import read_video
from tests.video_samples import face_video, tiny_checkpoint


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    return {
        "video": face_video(root / "astronaut.mp4", frames=40, size=128),
        "tdrag": tiny_checkpoint(root / "tdrag.pt"),
        "r3d18": tiny_checkpoint(root / "r3d18.pt", name="r3d18", keyframes="uniform"),
    }


@pytest.fixture(scope="module")
def face(media):
    _, config = load_model(media["tdrag"])
    return extract_face_clip(media["video"], size=config.data.size)


def test_window_bounds():
    assert window_bounds(100, 25.0, None) == [(0, 100)]
    assert window_bounds(100, 25.0, 10.0) == [(0, 100)]  # longer than the video: one window
    bounds = window_bounds(250, 25.0, 3.0)  # 10 s in windows of about 3 s: 3 windows
    assert len(bounds) == 3
    assert bounds[0][0] == 0 and bounds[-1][1] == 250
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [b - a for a, b in bounds]
    assert max(lengths) - min(lengths) <= 1
    tiny = window_bounds(5, 25.0, 0.01)  # shorter windows than frames: one frame each at most
    assert tiny == [(i, i + 1) for i in range(5)]
    with pytest.raises(ValueError, match="window"):
        window_bounds(10, 25.0, 0.0)


def test_predict_matches_the_evaluation_path(media, face):
    model, config = load_model(media["tdrag"])
    prediction = predict_face_clip(model, config, face, window=0.8)
    fps = face.fps
    assert len(prediction.windows) == round(face.num_frames / (0.8 * fps))
    # Probabilities by window recomputed independently: keyframes -> eval_transform -> model(x).
    for window in prediction.windows:
        keys = window.keyframes
        assert len(keys) == config.data.frames
        assert np.all(np.diff(keys) >= 0) and keys.min() >= window.start_frame and keys.max() < window.end_frame
        clip = torch.from_numpy(face.frames[keys][None])
        with torch.no_grad():
            expected = torch.softmax(model(eval_transform(clip, crop=config.data.crop)), dim=1)[0].numpy()
        np.testing.assert_allclose(window.probabilities, expected, rtol=1e-4, atol=1e-6)
    overall = np.mean([w.probabilities for w in prediction.windows], axis=0)
    np.testing.assert_allclose(prediction.probabilities, overall)
    assert prediction.probabilities.sum() == pytest.approx(1.0)
    assert prediction.class_names == DFEW_CLASSES
    assert prediction.top_class == DFEW_CLASSES[int(np.argmax(overall))]
    # Attention of the deepest stage, one map per keyframe, at the crop's size, in [0, 1].
    windows, frames, crop = len(prediction.windows), config.data.frames, config.data.crop
    assert prediction.attention_stage == f"layer{max(config.model.attention.stages)}"
    assert prediction.attention.shape == (windows, frames, crop, crop)
    assert prediction.attention.min() >= 0 and prediction.attention.max() <= 1
    assert prediction.keyframe_crops.shape == (windows, frames, crop, crop, 3)


def test_predict_video_end_to_end_and_outputs(media, tmp_path):
    model, config = load_model(media["tdrag"])
    prediction = predict_video(model, config, media["video"], window=1.0)
    paths = write_prediction(prediction, config, media["tdrag"], tmp_path / "out", stem="clip")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["clip.json", "clip_keyframes.png", "clip_overlay.mp4"]
    data = json.loads(paths["json"].read_text())
    assert data["video"] == str(media["video"]) and data["checkpoint"] == str(media["tdrag"])
    assert data["model"] == "tdrag" and data["classes"] == list(DFEW_CLASSES)
    assert list(data["probabilities"]) == list(DFEW_CLASSES)
    assert data["top_class"] == max(data["probabilities"], key=data["probabilities"].get)
    assert data["face"]["coverage"] >= 0.8
    assert data["frames"] == len(read_video(media["video"])[0])
    assert [w["index"] for w in data["windows"]] == list(range(len(prediction.windows)))
    assert data["windows"][-1]["end_s"] == pytest.approx(data["duration_s"])
    assert data["outputs"] == {"overlay_video": "clip_overlay.mp4", "keyframes_png": "clip_keyframes.png"}
    # The PNG: a title, then per window a header and its keyframes, SHEET_COLUMNS to a line, each
    # SHEET_PANEL px with a caption (title 30 px, headers 26 px, captions 22 px).
    sheet = cv2.imread(str(paths["keyframes_png"]))
    frames = config.data.frames
    columns = min(SHEET_COLUMNS, frames)
    lines = -(-frames // columns)
    windows = len(data["windows"])
    assert sheet.shape == (30 + windows * (26 + lines * (SHEET_PANEL + 22)), columns * SHEET_PANEL, 3)
    np.testing.assert_array_equal(cv2.cvtColor(sheet, cv2.COLOR_BGR2RGB), keyframe_sheet(prediction))
    # The overlay video: one frame per keyframe of every window, crop and heatmap side by side.
    overlay, info = read_video(paths["overlay_video"])
    assert len(overlay) == len(data["windows"]) * frames
    assert overlay.shape[2] == 2 * OVERLAY_PANEL


def test_the_keyframe_sheet_names_each_keyframe_and_window(media, face):
    model, config = load_model(media["tdrag"])
    prediction = predict_face_clip(model, config, face, window=0.8)
    words = sheet_captions(prediction)
    top = prediction.top_index
    assert words["title"].startswith(f"{face.path.name}: {DFEW_CLASSES[top]} {prediction.probabilities[top]:.2f} ")
    assert words["title"].endswith(f"attention of {prediction.attention_stage}")
    assert len(words["windows"]) == len(prediction.windows) >= 2
    for window, header, names in zip(prediction.windows, words["windows"], words["keyframes"]):
        best = int(np.argmax(window.probabilities))
        assert header == (f"window {window.index + 1}/{len(prediction.windows)}  {window.start_s:.1f}-"
                          f"{window.end_s:.1f} s  {DFEW_CLASSES[best]} {window.probabilities[best]:.2f}")
        # Each keyframe: its index in the window and its time in the video (frame / fps).
        assert names == [f"key {t + 1}  {k / face.fps:.2f} s" for t, k in enumerate(window.keyframes)]
    sheet = keyframe_sheet(prediction)
    # The panels are the overlays, upscaled; the title and caption bars carry text (light on black).
    top_left = sheet[30 + 26 : 30 + 26 + SHEET_PANEL, :SHEET_PANEL]
    np.testing.assert_array_equal(top_left, cv2.resize(overlay_frames(prediction)[0, 0], (SHEET_PANEL, SHEET_PANEL)))
    first_caption = sheet[30 + 26 + SHEET_PANEL : 30 + 26 + SHEET_PANEL + 22, :SHEET_PANEL]
    assert (first_caption > 128).sum() > 50 and (sheet[:30] > 128).sum() > 200


def test_model_without_attention(media, face, tmp_path):
    model, config = load_model(media["r3d18"])
    prediction = predict_face_clip(model, config, face)
    assert prediction.attention is None and prediction.attention_stage is None
    assert len(prediction.windows) == 1
    np.testing.assert_array_equal(keyframe_grid(prediction), np.concatenate(list(prediction.keyframe_crops[0]), axis=1))
    paths = write_prediction(prediction, config, media["r3d18"], tmp_path)
    assert json.loads(paths["json"].read_text())["attention_stage"] is None
    assert read_video(paths["overlay_video"])[0].shape[2] == OVERLAY_PANEL


def test_failed_write_leaves_nothing(media, face, tmp_path, monkeypatch):
    model, config = load_model(media["tdrag"])
    prediction = predict_face_clip(model, config, face)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(output_module.cv2, "imencode", broken)
    with pytest.raises(OSError, match="disk full"):
        write_prediction(prediction, config, media["tdrag"], tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_attention_overlay_colours_the_hot_spot():
    frames = np.full((2, 32, 32, 3), 128, np.uint8)
    maps = np.zeros((2, 32, 32), np.float32)
    maps[0, 4:12, 4:12] = 1.0
    maps[1] = 0.5
    out = attention_overlay(frames, maps)
    assert out.shape == frames.shape and out.dtype == np.uint8
    hot, cold = out[0, 8, 8].astype(int), out[0, 24, 24].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # JET: red for high, blue for low
    # One scale for all maps: 0.5 is mid-scale, green in JET, greener than both ends.
    mid = out[1, 16, 16].astype(int)
    assert mid[1] > hot[1] + 20 and mid[1] > cold[1] + 20
    # An explicit range: 1.0 in (0, 2) is mid-scale too.
    np.testing.assert_array_equal(attention_overlay(frames[:1], maps[:1], value_range=(0, 2))[0, 8, 8], mid)


def test_prediction_dict_is_plain_json(media, face):
    model, config = load_model(media["tdrag"])
    prediction = predict_face_clip(model, config, face, window=0.5)
    data = prediction_to_dict(prediction, config, media["tdrag"])
    assert json.loads(json.dumps(data)) == data
    assert data["aggregation"] == "mean of the window probabilities"
    assert data["input"] == {"keyframes": "redundancy", "frames_per_window": 8, "size": 64, "crop": 56}


@pytest.mark.gpu
def test_cuda_matches_cpu(media, face, monkeypatch):
    # TF32 convolutions round to 10-bit mantissas: compare in full float32.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    cpu_model, config = load_model(media["tdrag"])
    cuda_model, _ = load_model(media["tdrag"], device="cuda")
    on_cpu = predict_face_clip(cpu_model, config, face, window=0.8)
    on_cuda = predict_face_clip(cuda_model, config, face, window=0.8, device="cuda")
    np.testing.assert_allclose(on_cuda.probabilities, on_cpu.probabilities, atol=1e-4)
    np.testing.assert_allclose(on_cuda.attention, on_cpu.attention, atol=1e-3)


def test_attention_is_upsampled_by_the_shared_function(media, face):
    """The overlay's maps are tdrag.models.inspection.upsample_attention of the window's stage maps (trilinear
    in time and space), and the crops are center_crop_box's box: no second implementation."""
    from tdrag.data.augment import center_crop_box
    from tdrag.models.inspection import upsample_attention

    model, config = load_model(media["tdrag"])
    prediction = predict_face_clip(model, config, face, window=0.8)
    crop, frames = config.data.crop, config.data.frames
    top, left = center_crop_box(config.data.size, crop)
    for w, window in enumerate(prediction.windows):
        clip = torch.from_numpy(face.frames[window.keyframes][None])
        with torch.no_grad():
            stage_maps = model.inspect(eval_transform(clip, crop=crop)).attention[prediction.attention_stage]
        expected = upsample_attention(stage_maps, (frames, crop, crop))[0].numpy()
        np.testing.assert_allclose(prediction.attention[w], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(prediction.keyframe_crops[w],
                                      face.frames[window.keyframes][:, top : top + crop, left : left + crop])
    # Strided stages have fewer steps than keyframes: time is interpolated, not repeated.
    assert stage_maps.shape[2] < frames or stage_maps.shape[2] == frames
