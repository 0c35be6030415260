"""tdrag.predict.video and tdrag.predict.faces: decoding, clear errors for bad files, the Haar face
track and its crops."""

from __future__ import annotations

import numpy as np
import pytest

from tdrag.predict.faces import (
    NoFaceError,
    crop_boxes,
    crop_square,
    detect_faces,
    extract_face_clip,
    main_track,
    track_faces,
)
from tdrag.predict.video import VideoError, probe_video, read_video, write_video
from tests.video_samples import face_video, noise_video, text_file, truncated_copy


def gradient_frames(frames: int = 12, size: int = 64) -> np.ndarray:
    """(L, size, size, 3) uint8 RGB: smooth ramps that move with the frame number."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        out[i, ..., 0] = (xx * 3 + 10 * i) % 256
        out[i, ..., 1] = (yy * 3) % 256
        out[i, ..., 2] = 60 + 8 * i
    return out


@pytest.fixture(scope="module")
def face_mp4(tmp_path_factory):
    return face_video(tmp_path_factory.mktemp("face") / "astronaut.mp4")


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_write_then_read_round_trip(tmp_path, suffix):
    frames = gradient_frames()
    path = write_video(tmp_path / f"ramp{suffix}", frames, fps=20.0)
    decoded, info = read_video(path)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert info.fps == pytest.approx(20.0)
    assert info.declared_frames == len(frames)
    # Lossy codecs: close to the source, and frame order kept (blue grows with the frame number).
    assert np.abs(decoded.astype(int) - frames.astype(int)).mean() < 12
    assert np.all(np.diff(decoded[..., 2].mean(axis=(1, 2))) > 0)
    # Only the video itself, no staging leftovers.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ramp{suffix}"]


def test_write_video_failure_leaves_nothing(tmp_path):
    frames = list(gradient_frames(4)) + [np.zeros((32, 32, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 4"):
        write_video(tmp_path / "bad.mp4", frames, fps=10)
    with pytest.raises(ValueError, match="suffix"):
        write_video(tmp_path / "bad.xyz", gradient_frames(2), fps=10)
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.avi", [], fps=10)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_and_empty_file(tmp_path):
    with pytest.raises(VideoError, match="file not found") as err:
        probe_video(tmp_path / "nope.mp4")
    assert str(tmp_path / "nope.mp4") in str(err.value)
    with pytest.raises(VideoError, match="directory"):
        probe_video(tmp_path)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty file"):
        read_video(tmp_path / "empty.mp4")


def test_text_file_named_mp4(tmp_path):
    path = text_file(tmp_path / "notes.mp4")
    with pytest.raises(VideoError, match="not a video") as err:
        read_video(path)
    assert err.value.path == path and str(path) in str(err.value)


def test_truncated_mp4(tmp_path, face_mp4):
    # mp4v files keep their index (moov) at the end: a cut file cannot even be opened.
    path = truncated_copy(face_mp4, tmp_path / "cut.mp4", 0.6)
    with pytest.raises(VideoError, match="truncated"):
        read_video(path)
    with pytest.raises(VideoError, match="truncated"):
        extract_face_clip(path)


def test_truncated_avi_decodes_fewer_frames_than_declared(tmp_path):
    source = write_video(tmp_path / "full.avi", gradient_frames(20), fps=25)
    path = truncated_copy(source, tmp_path / "cut.avi", 0.75)
    with pytest.raises(VideoError, match=r"truncated or corrupt: decoded \d+ of the 20 frames"):
        read_video(path)


def test_zero_frame_video(tmp_path):
    import cv2

    path = tmp_path / "zero.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 32))
    writer.release()
    with pytest.raises(VideoError, match="no frame could be decoded|cannot be opened"):
        read_video(path)


def test_still_image_is_not_a_video(tmp_path):
    import cv2

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), gradient_frames(1)[0])
    with pytest.raises(VideoError, match="still image|not a video"):
        read_video(path)


def test_face_is_found_and_followed(face_mp4):
    clip = extract_face_clip(face_mp4, size=96, detect_every=2)
    frames, _ = read_video(face_mp4)
    assert clip.frames.shape == (len(frames), 96, 96, 3) and clip.frames.dtype == np.uint8
    assert clip.sampled.sum() == (len(frames) + 1) // 2
    assert clip.coverage >= 0.8
    # The crops really hold the face, centred: the detector finds it again in most of them, near
    # the middle and filling a good part of the crop (the margin leaves room around it).
    found = 0
    for crop in clip.frames[::4]:
        boxes = detect_faces(crop[:, :, ::-1], min_face=0.3)
        if len(boxes):
            x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
            assert abs(x + w / 2 - 48) < 0.15 * 96 and abs(y + h / 2 - 48) < 0.15 * 96
            assert 0.45 < w / 96 < 0.95
            found += 1
    assert found >= 0.8 * len(clip.frames[::4])
    # Smoothed: the crop box never jumps by more than a tenth of its side between frames.
    steps = np.abs(np.diff(clip.boxes[:, :2], axis=0)).max(axis=1)
    assert np.all(steps < 0.1 * clip.boxes[1:, 2])


def test_noise_video_has_no_face(tmp_path):
    path = noise_video(tmp_path / "noise.mp4")
    with pytest.raises(NoFaceError, match="no face detected") as err:
        extract_face_clip(path)
    assert str(path) in str(err.value)


def test_main_track_is_the_large_persistent_face():
    face = lambda x: np.array([x, 40.0, 50.0, 50.0], np.float32)  # noqa: E731
    small = np.array([5.0, 5.0, 12.0, 12.0], np.float32)
    detections = {}
    for i in range(0, 20, 2):
        boxes = [face(20 + i)]
        if i % 4 == 0:
            boxes.append(small)  # a small background face, every other sampled frame
        if i == 6:
            boxes.append(np.array([150.0, 150.0, 60.0, 60.0], np.float32))  # one-off false positive
        detections[i] = np.stack(boxes)
    detections[8] = np.zeros((0, 4), np.float32)  # a missed frame: the track bridges it
    tracks = track_faces(detections, max_gap=8)
    best = main_track(tracks)
    assert len(tracks) == 3
    assert sorted(best) == [i for i in range(0, 20, 2) if i != 8]
    assert all(abs(best[i][0] - (20 + i)) < 1e-6 for i in best)


def test_a_long_gap_starts_a_new_track():
    box = np.array([[10.0, 10.0, 40.0, 40.0]], np.float32)
    tracks = track_faces({0: box, 2: box, 30: box}, max_gap=5)
    assert [sorted(t) for t in tracks] == [[0, 2], [30]]
    assert main_track([]) is None


def test_crop_boxes_interpolate_hold_and_add_margin():
    track = {
        4: np.array([0.0, 0.0, 20.0, 20.0], np.float32),
        14: np.array([100.0, 50.0, 40.0, 40.0], np.float32),
    }
    boxes = crop_boxes(track, num_frames=20, margin=0.25, smooth=1)
    assert boxes.shape == (20, 3)
    np.testing.assert_allclose(boxes[0], [10, 10, 30])  # held before the first detection
    np.testing.assert_allclose(boxes[9], [(10 + 120) / 2, (10 + 70) / 2, 45])  # halfway
    np.testing.assert_allclose(boxes[19], [120, 70, 60])  # held after the last


def test_crop_boxes_smoothing_removes_jitter():
    # Detections that jump 8 px left and right every frame around a fixed face.
    track = {i: np.array([100.0 + (8 if i % 2 else -8), 50.0, 40.0, 40.0], np.float32) for i in range(21)}
    raw = crop_boxes(track, num_frames=21, smooth=1)
    smoothed = crop_boxes(track, num_frames=21, smooth=5)
    assert np.abs(np.diff(raw[:, 0])).max() == pytest.approx(16)
    assert np.abs(np.diff(smoothed[2:-2, 0])).max() < 0.25 * 16
    assert smoothed[:, 0].mean() == pytest.approx(raw[:, 0].mean(), abs=1.0)


def test_crop_square_pads_outside_the_frame():
    frame = np.full((40, 60, 3), 200, np.uint8)
    crop = crop_square(frame, np.array([0.0, 0.0, 20.0]), size=20)
    assert crop.shape == (20, 20, 3)
    # The box is centred on the top-left corner: three quarters of it lie outside the frame.
    assert (crop[:8, :8] == 0).all() and (crop[12:, 12:] == 200).all()
    inside = crop_square(frame, np.array([30.0, 20.0, 10.0]), size=5)
    assert (inside == 200).all()
