"""Video files -> face-centred clips: Haar face detection, the main face's track, square crops.

DFEW clips are already face crops; a user's own recording is not. ``extract_face_clip`` turns any
video that OpenCV decodes (mp4, avi, mov, mkv, ...) into DFEW-like square face crops:

1. **Detect** faces with the frontal-face Haar cascade that opencv-python ships
   (``cv2.data.haarcascades``) on every ``detect_every``-th frame (default: about 10 per second
   of video), on a grey copy downscaled so its
   longer side is at most ``detect_side`` pixels (the cascade's cost grows with the pixel count,
   and a face that fills a DFEW-like shot stays far above the cascade's 24 px window).
2. **Track**: detections are linked greedily from one sampled frame to the next (highest IoU
   first; a detection whose centre lies within half a face size of a track's last box also
   links), allowing gaps of up to ``max_gap_seconds``. The *main face* is the track with the
   largest summed box area: large and present for long, which drops both brief false positives
   and small faces in the background.
3. **Fill and smooth**: the main track's centre and size are linearly interpolated over all
   frames (held constant before its first and after its last detection), then smoothed with a
   centred moving average of ``smooth_seconds``: offline, a centred window has no lag, unlike an
   exponential filter.
4. **Crop**: a square of side ``size * (1 + 2 * margin)`` around the smoothed box (the Haar box
   runs from brows to chin; the margin takes in the forehead and jaw as DFEW crops do), padded
   with black where it leaves the frame, resized to ``size`` (INTER_AREA).

The file is decoded twice (detection, then cropping) so that memory holds only the small crops,
never the full-resolution frames of a long video.

Errors name the file and the reason: ``tdrag.predict.video.VideoError`` for a missing, empty,
non-video, zero-frame, still-image or truncated file, ``NoFaceError`` (a ``VideoError``) when no
face is found.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tdrag.predict.video import VideoError, VideoInfo, iter_bgr_frames, probe_video

log = logging.getLogger(__name__)

# Face detections per second of video when ``detect_every`` is left to ``extract_face_clip``:
# faces move smoothly at this scale, and detection is the costly step of the whole pipeline.
DETECT_FPS = 10.0


class NoFaceError(VideoError):
    """The video decodes, but the face detector finds no face that can be followed."""


@functools.lru_cache(maxsize=1)
def load_face_detector() -> cv2.CascadeClassifier:
    """The frontal-face Haar cascade shipped in ``cv2.data.haarcascades``."""
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    detector = cv2.CascadeClassifier(str(path))
    if detector.empty():
        raise RuntimeError(f"{path}: cannot load the Haar face cascade (is opencv-python installed fully?)")
    return detector


def detect_faces(
    frame_bgr: np.ndarray,
    detect_side: int = 320,
    min_face: float = 0.08,
    detector: cv2.CascadeClassifier | None = None,
) -> np.ndarray:
    """Haar face detections on one frame.

    Args:
        frame_bgr: ``(H, W, 3)`` uint8 BGR (as OpenCV decodes) or ``(H, W)`` grey.
        detect_side: the frame is downscaled so its longer side is at most this many pixels.
        min_face: smallest face side to report, as a fraction of the frame's shorter side.
    Returns:
        ``(n, 4)`` float32 boxes ``x, y, w, h`` in the input frame's pixels.
    """
    detector = detector or load_face_detector()
    grey = frame_bgr if frame_bgr.ndim == 2 else cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    height, width = grey.shape
    scale = min(1.0, detect_side / max(height, width))
    if scale < 1.0:
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, small, interpolation=cv2.INTER_AREA)
    # Equalisation makes the cascade less sensitive to exposure (dark rooms, backlight).
    grey = cv2.equalizeHist(grey)
    min_side = max(24, int(min_face * min(grey.shape)))
    boxes = detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float32)
    return np.asarray(boxes, np.float32) / scale


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two ``x, y, w, h`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def _link_score(last: np.ndarray, box: np.ndarray) -> float:
    """How well ``box`` continues a track ending in ``last``: its IoU, or a small positive score
    when the centres are within half a face size (fast motion between sampled frames); 0 = no."""
    iou = box_iou(last, box)
    if iou >= 0.2:
        return iou
    size = math.sqrt(max(last[2] * last[3], 1e-6))
    dist = math.hypot(last[0] + last[2] / 2 - box[0] - box[2] / 2, last[1] + last[3] / 2 - box[1] - box[3] / 2)
    return 0.01 * (1 - dist / (0.5 * size)) if dist < 0.5 * size else 0.0


def track_faces(detections: dict[int, np.ndarray], max_gap: int) -> list[dict[int, np.ndarray]]:
    """Greedy tracks over per-frame detections.

    Args:
        detections: frame index -> ``(n, 4)`` boxes ``x, y, w, h`` (frames without faces may be
            missing or hold an empty array).
        max_gap: a track ends when it has had no detection for more than this many frames.
    Returns:
        Tracks as dicts frame index -> box, in order of creation.
    """
    tracks: list[dict[int, np.ndarray]] = []
    for index in sorted(detections):
        boxes = detections[index]
        live = [t for t in tracks if index - max(t) <= max_gap]
        pairs = []
        for ti, track in enumerate(live):
            last = track[max(track)]
            for bi, box in enumerate(boxes):
                score = _link_score(last, box)
                if score > 0:
                    pairs.append((score, ti, bi))
        used_tracks, used_boxes = set(), set()
        for score, ti, bi in sorted(pairs, reverse=True):
            if ti in used_tracks or bi in used_boxes:
                continue
            live[ti][index] = boxes[bi]
            used_tracks.add(ti)
            used_boxes.add(bi)
        for bi, box in enumerate(boxes):
            if bi not in used_boxes:
                tracks.append({index: box})
    return tracks


def main_track(tracks: list[dict[int, np.ndarray]]) -> dict[int, np.ndarray] | None:
    """The track with the largest summed box area (large and long-lived), or None."""
    if not tracks:
        return None
    return max(tracks, key=lambda t: sum(float(b[2] * b[3]) for b in t.values()))


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 with edge padding; ``values: (L, K)``."""
    if window <= 1 or len(values) < 2:
        return values
    half = window // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(values.shape[1])], axis=1)


def crop_boxes(
    track: dict[int, np.ndarray],
    num_frames: int,
    margin: float = 0.2,
    smooth: int = 1,
) -> np.ndarray:
    """Square crop box for every frame from a face track.

    Args:
        track: frame index -> detected box ``x, y, w, h``.
        num_frames: L, frames in the video.
        margin: added on each side, as a fraction of the face size.
        smooth: length in frames of the centred moving average over centre and size.
    Returns:
        ``(L, 3)`` float32 ``cx, cy, side``: centre and side of the square crop per frame.
    """
    frames = np.array(sorted(track), dtype=np.float64)
    boxes = np.stack([track[int(i)] for i in frames]).astype(np.float64)
    cx = boxes[:, 0] + boxes[:, 2] / 2
    cy = boxes[:, 1] + boxes[:, 3] / 2
    size = np.sqrt(boxes[:, 2] * boxes[:, 3])
    all_frames = np.arange(num_frames, dtype=np.float64)
    # np.interp: linear between detections, the nearest detection's value outside them.
    params = np.stack([np.interp(all_frames, frames, v) for v in (cx, cy, size)], axis=1)
    params = _moving_average(params, smooth)
    params[:, 2] *= 1 + 2 * margin
    return params.astype(np.float32)


def crop_square(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Cut the square ``box = (cx, cy, side)`` out of ``frame`` (black outside it), resized.

    Args:
        frame: ``(H, W, C)`` uint8.
    Returns:
        ``(size, size, C)`` uint8.
    """
    cx, cy, side = (float(v) for v in box)
    side = max(2, round(side))
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + side, y0 + side
    height, width = frame.shape[:2]
    inner = frame[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    if inner.size == 0:
        patch = np.zeros((side, side) + frame.shape[2:], frame.dtype)
    else:
        patch = cv2.copyMakeBorder(
            inner,
            max(0, -y0),
            max(0, y1 - height),
            max(0, -x0),
            max(0, x1 - width),
            cv2.BORDER_CONSTANT,
            value=0,
        )
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


# --------------------------------------------------------------------------------------------
# The whole pipeline


@dataclass
class FaceClip:
    """A video reduced to square crops of its main face."""

    info: VideoInfo
    # (L, S, S, 3) uint8 RGB face crops, one per decoded frame.
    frames: np.ndarray
    # (L, 3) float32 cx, cy, side of the square crop in source pixels.
    boxes: np.ndarray
    # (L,) bool: the detector ran on this frame.
    sampled: np.ndarray
    # (L,) bool: the main face was detected on this frame (only sampled frames can be True).
    detected: np.ndarray
    # Number of face tracks found (1 for a single person, more with false positives or crowds).
    num_tracks: int

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def fps(self) -> float:
        return self.info.fps

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_frames / self.fps

    @property
    def coverage(self) -> float:
        """Share of the sampled frames on which the main face was detected (0..1)."""
        return float(self.detected[self.sampled].mean()) if self.sampled.any() else 0.0


def extract_face_clip(
    path: str | os.PathLike,
    size: int = 128,
    detect_every: int | None = None,
    margin: float = 0.2,
    smooth_seconds: float = 0.25,
    detect_side: int = 320,
    min_face: float = 0.08,
    max_gap_seconds: float = 1.0,
    min_detections: int = 3,
) -> FaceClip:
    """Decode ``path``, follow its main face and return square crops of it.

    Args:
        size: side S of the returned crops.
        detect_every: run the detector on every k-th frame (the track is interpolated between);
            None = about ``DETECT_FPS`` times per second of video.
        margin: added around the face box on each side, as a fraction of the face size.
        smooth_seconds: length of the centred moving average over the box.
        detect_side: longer side of the grey frame the detector sees.
        min_face: smallest face, as a fraction of the frame's shorter side.
        max_gap_seconds: a face lost for longer than this starts a new track.
        min_detections: the main face must be detected on at least this many sampled frames
            (fewer for very short videos); lone detections are usually false positives.
    Returns:
        FaceClip with ``frames (L, size, size, 3)`` uint8 RGB.
    Raises:
        VideoError: missing, empty, not a video, zero frames, still image, truncated.
        NoFaceError: no face that can be followed.
    """
    info = probe_video(path)
    if detect_every is None:
        detect_every = max(1, round(info.fps / DETECT_FPS))
    if detect_every < 1:
        raise ValueError(f"detect_every must be >= 1, got {detect_every}")
    detector = load_face_detector()

    # Pass 1: detect on every k-th frame (others are only grabbed, which is cheaper).
    detections: dict[int, np.ndarray] = {}
    num_frames = 0
    for index, frame in iter_bgr_frames(path, want=lambda i: i % detect_every == 0):
        num_frames = index + 1
        if frame is not None:
            detections[index] = detect_faces(frame, detect_side=detect_side, min_face=min_face, detector=detector)

    sampled = np.zeros(num_frames, bool)
    sampled[list(detections)] = True
    max_gap = max(detect_every, round(max_gap_seconds * info.fps))
    tracks = track_faces(detections, max_gap=max_gap)
    track = main_track(tracks)
    needed = min(min_detections, int(sampled.sum()))
    if track is None or len(track) < needed:
        found = 0 if track is None else len(track)
        detail = "" if found == 0 else f"; a face-like region on {found} frame(s) only, too few to follow"
        raise NoFaceError(info.path, f"no face detected in {int(sampled.sum())} sampled frames{detail}")
    detected = np.zeros(num_frames, bool)
    detected[list(track)] = True

    smooth = max(1, round(smooth_seconds * info.fps))
    boxes = crop_boxes(track, num_frames, margin=margin, smooth=smooth)

    # Pass 2: crop every frame.
    crops = np.empty((num_frames, size, size, 3), np.uint8)
    count = 0
    for index, frame in iter_bgr_frames(path):
        if index >= num_frames:
            break
        crops[index] = cv2.cvtColor(crop_square(frame, boxes[index], size), cv2.COLOR_BGR2RGB)
        count = index + 1
    if count != num_frames:
        raise VideoError(info.path, f"decoded {count} frames on the second pass but {num_frames} on the first")
    clip = FaceClip(info=info, frames=crops, boxes=boxes, sampled=sampled, detected=detected, num_tracks=len(tracks))
    log.debug("%s: %d frames, %d face track(s), coverage %.2f", info.path, num_frames, len(tracks), clip.coverage)
    return clip

