"""analysis.attribution.animation: the pictures (panels, blend worked out by hand), GIF and MP4 frame
counts and sizes, the inline HTML, a real run's clip."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from analysis.attribution import animation as anim


def clip(t: int = 8, side: int = 56, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Frames like the synthetic faces: smooth shapes under a little pixel noise (noise is what makes a GIF big)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    face = np.stack([200 * xx, 150 * yy, 120 + 60 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1)], axis=-1)
    frames = np.clip(face[None] + rng.normal(0, 3, (t, side, side, 3)), 0, 255).astype(np.uint8)
    ramp = np.broadcast_to(np.linspace(0, 1, side, dtype=np.float32), (t, side, side))
    return frames, {"attention layer2": ramp, "Grad-CAM": rng.random((t, side, side)).astype(np.float32)}


def test_overlay_blend_worked_out_by_hand():
    frame = np.full((1, 2, 3), 200, dtype=np.uint8)
    out = anim.overlay_rgb(frame, np.array([[0.0, 1.0]]), alpha=0.5)
    # jet(0) = (0, 0, 127.5) and jet(1) = (127.5, 0, 0) in 0..255; half of each plus half of 200.
    assert out[0, 0].tolist() == [100, 100, 164] and out[0, 1].tolist() == [164, 100, 100]


def test_pictures_have_the_input_then_one_panel_per_map():
    frames, maps = clip()
    pictures = anim.compose_frames(frames, maps)
    side = 2 * 56  # 56 px panels are doubled towards PANEL_SIDE
    assert pictures.shape == (8, anim.LABEL_BAND + side, 3 * side, 3) and pictures.dtype == np.uint8
    doubled = cv2.resize(frames[5], (side, side), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(pictures[5, anim.LABEL_BAND:, :side], doubled)
    blended = cv2.resize(anim.overlay_rgb(frames[5], maps["Grad-CAM"][5]), (side, side), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(pictures[5, anim.LABEL_BAND:, 2 * side:], blended)
    assert anim.compose_frames(frames[:, :, :, :], {}, scale=1).shape == (8, anim.LABEL_BAND + 56, 56, 3)
    with pytest.raises(ValueError, match="Grad-CAM"):
        anim.compose_frames(frames, {"Grad-CAM": maps["Grad-CAM"][:4]})


def test_gif_frame_count_size_and_timing():
    frames, maps = clip()
    pictures = anim.compose_frames(frames, maps)
    data = anim.gif_bytes(pictures, fps=4)
    image = Image.open(io.BytesIO(data))
    assert image.format == "GIF" and image.n_frames == 8 and image.size == (pictures.shape[2], pictures.shape[1])
    assert image.info["duration"] == 250 and image.info["loop"] == 0
    # 8 keyframes of 3 panels of 112 px: about 96 kB with one shared palette and no dithering; a
    # dithered 256-colour palette per frame makes 160 kB of the same pictures.
    assert len(data) < 120_000
    image.seek(3)
    shown = np.asarray(image.convert("RGB"), dtype=np.float64)
    assert np.abs(shown - pictures[3]).mean() < 12  # 64 shared colours, no dithering


def test_mp4_frame_count_and_size(tmp_path):
    frames, maps = clip(t=6, side=45)  # odd sides: padded by one pixel
    pictures = anim.compose_frames(frames, maps, scale=1)
    path = tmp_path / "a.mp4"
    path.write_bytes(anim.mp4_bytes(pictures, fps=5))
    video = cv2.VideoCapture(str(path))
    try:
        assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(5)
        width, height = int(video.get(cv2.CAP_PROP_FRAME_WIDTH)), int(video.get(cv2.CAP_PROP_FRAME_HEIGHT))
        read = []
        while True:
            ok, frame = video.read()
            if not ok:
                break
            read.append(frame)
    finally:
        video.release()
    h, w = pictures.shape[1:3]
    assert (width, height) == (w + w % 2, h + h % 2) and len(read) == 6
    first = cv2.cvtColor(read[0], cv2.COLOR_BGR2RGB)[:h, :w].astype(np.float64)
    assert np.abs(first - pictures[0]).mean() < 40  # lossy, but the same picture


def test_animation_saves_both_and_embeds_both(tmp_path):
    frames, maps = clip(t=4)
    a = anim.Animation(anim.compose_frames(frames, maps), fps=2, title="clip <1>")
    assert Image.open(a.save(tmp_path / "x.gif")).n_frames == 4
    assert a.save(tmp_path / "x.mp4").read_bytes()[4:8] == b"ftyp"
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):
        a.save(tmp_path / "x.avi")
    page = a._repr_html_()
    assert page.count("data:image/gif;base64,") == 1 and 'download="clip.mp4" href="data:video/mp4;base64,' in page
    assert "clip &lt;1&gt;" in page


def test_a_runs_clip_animates_attention_and_an_attribution(tiny_run):
    from analysis.internals.run import open_run

    torch.manual_seed(0)
    run = open_run(tiny_run, device="cpu", progress=False)
    a = anim.clip_animation(run, 0, method="layercam")
    t, side = run.cache.num_frames, run.crop * 4  # 28 px crops are enlarged 4 times
    assert a.frames.shape == (t, anim.LABEL_BAND + side, 3 * side, 3)
    assert run.video_ids[0] in a.title and Image.open(io.BytesIO(a.gif())).n_frames == t
    assert anim.clip_animation(run, 0, stage="layer2", method=None).frames.shape[2] == 2 * side
