"""analysis.notebook.video and analysis.demo_media: the figures of notebook 07 and the demo clip."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.demo_media import pan_zoom_frames
from analysis.notebook.video import checkpoint_for, plot_face_track, plot_video_prediction
from tdrag.models.registry import load_model
from tdrag.predict.faces import extract_face_clip
from tdrag.predict.inference import predict_face_clip
from tdrag.runs.checkpoints import CheckpointError
from tests.video_samples import face_video, tiny_checkpoint


def test_pan_zoom_moves_and_zooms():
    image = np.zeros((200, 200, 3), np.uint8)
    image[90:110, 90:110] = 255  # a bright square at the centre the camera follows
    frames = pan_zoom_frames(image, (100.0, 100.0), frames=10, size=50, zoom=(0.8, 0.4), pan=0.1)
    assert frames.shape == (10, 50, 50, 3) and frames.dtype == np.uint8
    # Zooming in: the square covers more of the last frame than of the first.
    assert (frames[-1] > 128).mean() > 2 * (frames[0] > 128).mean()
    # Panning: the square's position in the frame changes.
    centre = lambda f: np.argwhere(f[..., 0] > 128).mean(axis=0)  # noqa: E731
    assert np.abs(centre(frames[0]) - centre(frames[5])).max() > 2


def test_figures(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    model, config = load_model(checkpoint)
    face = extract_face_clip(face_video(tmp_path / "face.mp4", frames=30, size=128), size=config.data.size)
    prediction = predict_face_clip(model, config, face, window=0.4)
    fig = plot_face_track(face)
    assert len(fig.axes) == 2 and "face detected on" in fig.axes[0].get_title()
    fig = plot_video_prediction(prediction, max_windows=2)
    assert len(fig.axes) == 3
    assert fig.axes[2].get_title() == f"whole video: {prediction.top_class}"
    assert len(fig.axes[0].get_yticklabels()) == 2  # only the first two of three windows shown


def test_checkpoint_for(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    assert checkpoint_for(checkpoint).path == checkpoint
    run = tmp_path / "mine"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(checkpoint.read_bytes())
    choice = checkpoint_for(run)
    assert choice.path == run / "checkpoints" / "last.pt" and "last epoch" in choice.reason
    with pytest.raises(CheckpointError, match="nothing_here"):
        checkpoint_for(tmp_path / "nothing_here")
