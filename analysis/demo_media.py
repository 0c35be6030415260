"""Demo media: a short video of a real face, for trying ``tdrag predict`` without a recording.

The face is scikit-image's ``astronaut`` photograph (Eileen Collins, public domain, shipped
inside scikit-image), filmed by a virtual camera that pans and zooms across it, so the face moves
and changes size the way it does in a hand-held recording.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from tdrag.predict.video import write_video

# Centre (x, y) of the face in skimage.data.astronaut() (512 x 512): used to keep the face in
# the virtual camera's view; the detector itself never sees this number.
_ASTRONAUT_FACE_CENTRE = (224.0, 113.0)


def astronaut_image() -> np.ndarray:
    """scikit-image's astronaut photograph, ``(512, 512, 3)`` uint8 RGB."""
    try:
        from skimage import data
    except ImportError as exc:  # scikit-image is a test / analysis dependency only
        raise ImportError("the demo face video needs scikit-image (pip install scikit-image)") from exc
    return data.astronaut()


def pan_zoom_frames(
    image: np.ndarray,
    centre: tuple[float, float],
    frames: int = 48,
    size: int = 160,
    zoom: tuple[float, float] = (0.65, 0.45),
    pan: float = 0.12,
) -> np.ndarray:
    """Frames of a camera that pans and zooms across ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        centre: (x, y) the camera keeps roughly in view.
        frames: L, number of frames.
        size: side of the square output frames.
        zoom: the camera's field of view, as a fraction of the image's shorter side, at the first
            and the last frame (a smaller fraction is a closer view).
        pan: amplitude of the circular pan, as a fraction of the image's shorter side.
    Returns:
        ``(L, size, size, 3)`` uint8 RGB.
    """
    height, width = image.shape[:2]
    short = min(height, width)
    out = np.empty((frames, size, size, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        side = short * (zoom[0] + (zoom[1] - zoom[0]) * t)
        angle = 2 * np.pi * t
        cx = centre[0] + pan * short * np.cos(angle)
        cy = centre[1] + pan * short * np.sin(angle)
        # Keep the field of view inside the image: no black borders in the demo.
        x0 = float(np.clip(cx - side / 2, 0, width - side))
        y0 = float(np.clip(cy - side / 2, 0, height - side))
        # Affine crop with sub-pixel positions, so the motion is smooth rather than in 1 px steps.
        scale = size / side
        matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float64)
        out[i] = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)
    return out


def make_demo_face_video(
    path: str | os.PathLike, frames: int = 48, size: int = 160, fps: float = 25.0
) -> Path:
    """Write a short pan-and-zoom video of the astronaut's face to ``path`` (.mp4 or .avi).

    Returns the path. Needs scikit-image.
    """
    video = pan_zoom_frames(astronaut_image(), _ASTRONAUT_FACE_CENTRE, frames=frames, size=size)
    return write_video(path, video, fps)


def demo_video(video: str | os.PathLike, demo_path: str | os.PathLike, frames: int = 200) -> Path:
    """``video`` when given; otherwise the astronaut demo clip written to ``demo_path`` (made once)."""
    if video:
        return Path(video)
    demo_path = Path(demo_path)
    return demo_path if demo_path.is_file() else make_demo_face_video(demo_path, frames=frames)
