"""Video files: open and check one (one clear ``VideoError`` per unusable file), decode it, write one.

``read_video`` decodes a short video into memory; ``iter_bgr_frames`` streams the frames of a long
one (``tdrag.predict.faces`` reads every video twice that way); ``write_video`` writes RGB frames
as MP4 or AVI, atomically. Errors name the file and the reason: a missing, empty, non-video,
zero-frame, still-image or truncated file.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

# Used when a container does not state its frame rate (some raw streams, broken headers).
DEFAULT_FPS = 25.0


class VideoError(ValueError):
    """A video file cannot be used; ``str(err)`` is ``"<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (before decoding it)."""

    path: Path
    # Frames per second (DEFAULT_FPS when the container gives none).
    fps: float
    # Frame count the container declares; 0 when unknown. The decoded count is authoritative.
    declared_frames: int
    width: int
    height: int


# --------------------------------------------------------------------------------------------
# Decoding


def _sniff_container(path: Path) -> str | None:
    """Name of the container the file's first bytes announce, or None when unrecognised."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:3] == b"FLV":
        return "FLV"
    if head[:4] == b"\x00\x00\x01\xba" or head[:1] == b"\x47":
        return "MPEG"
    return None


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if not head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _backend() -> int:
    """FFMPEG when this OpenCV build has it: it reads every common container, and asking for it
    keeps OpenCV from treating a file name as an image-sequence pattern (CAP_IMAGES)."""
    try:
        backends = cv2.videoio_registry.getStreamBackends()
    except AttributeError:  # very old OpenCV builds
        return cv2.CAP_ANY
    return cv2.CAP_FFMPEG if cv2.CAP_FFMPEG in backends else cv2.CAP_ANY


def _open(path: str | os.PathLike) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open ``path`` for decoding, with a clear VideoError when that is impossible."""
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "file not found")
    if path.is_dir():
        raise VideoError(path, "is a directory, not a video file")
    size = path.stat().st_size
    if size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    cap = cv2.VideoCapture(str(path), _backend())
    if not cap.isOpened():
        cap.release()
        container = _sniff_container(path)
        if container is not None:
            raise VideoError(
                path,
                f"{container} file that cannot be opened: truncated, corrupt or without video frames "
                f"({size} bytes)",
            )
        if _looks_like_text(path):
            raise VideoError(path, "not a video file (it contains text)")
        raise VideoError(path, "not a video file (OpenCV cannot open it)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        log.warning("%s: no usable frame rate in the file (%r); assuming %.0f fps", path, fps, DEFAULT_FPS)
        fps = DEFAULT_FPS
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    declared = int(count) if math.isfinite(count) and 0 < count < 1e9 else 0
    info = VideoInfo(
        path=path,
        fps=float(fps),
        declared_frames=declared,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
    )
    return cap, info


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Open ``path`` and return its container information (raises VideoError if unusable)."""
    cap, info = _open(path)
    cap.release()
    return info


def _check_decoded(info: VideoInfo, decoded: int) -> None:
    """Raise VideoError for zero frames, a still image, or fewer frames than the file declares."""
    if decoded == 0:
        raise VideoError(info.path, "no frame could be decoded (zero-frame or corrupt video)")
    if decoded == 1 and info.declared_frames <= 1:
        raise VideoError(info.path, "only one frame decoded: a still image, not a video")
    # Containers estimate the count from duration * fps for some formats: allow a little slack.
    slack = max(1, round(0.02 * info.declared_frames))
    if info.declared_frames and decoded < info.declared_frames - slack:
        raise VideoError(
            info.path,
            f"truncated or corrupt: decoded {decoded} of the {info.declared_frames} frames the file declares",
        )


def iter_bgr_frames(
    path: str | os.PathLike, want: Callable[[int], bool] | None = None
) -> Iterator[tuple[int, np.ndarray | None]]:
    """Yield ``(index, frame)`` for every frame, BGR uint8 ``(H, W, 3)``.

    When ``want(index)`` is given, frames it rejects are only grabbed (decoded, not converted to
    an array) and yielded as None. After the last frame, raises VideoError if the video turns
    out to be empty or truncated.
    """
    cap, info = _open(path)
    decoded = 0
    try:
        while True:
            if not cap.grab():
                break
            needed = want is None or want(decoded)
            frame = None
            if needed:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    break
            yield decoded, frame
            decoded += 1
    finally:
        cap.release()
    _check_decoded(info, decoded)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode a whole (short) video into memory.

    Returns:
        frames: ``(L, H, W, 3)`` uint8 RGB; info: the container's VideoInfo.
    Raises VideoError (missing, not a video, zero frames, still image, truncated).
    """
    info = probe_video(path)
    frames = []
    for index, frame in iter_bgr_frames(path):
        if max_frames is not None and index >= max_frames:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return np.stack(frames), info


# Codec per container for ``write_video``: both ship with opencv-python's FFmpeg build.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write RGB frames ``(H, W, 3)`` uint8 (all the same size) to ``path``, atomically.

    The container follows the suffix (.mp4/.m4v/.mov: MPEG-4 Part 2 "mp4v"; .avi: Motion-JPEG).
    OpenCV picks the container from the file name, so the video is written under its final name
    inside a hidden staging folder next to ``path`` and then renamed into place; nothing is left
    under ``path`` if writing fails.
    """
    path = Path(path)
    fourcc = _FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"{path}: unsupported video suffix (use one of {', '.join(_FOURCC)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        staged = staging / path.name
        writer = None
        count = 0
        for frame in frames:
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"{path}: frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(staged), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
                if not writer.isOpened():
                    raise OSError(f"{path}: OpenCV cannot write {fourcc} video here")
            elif frame.shape[:2] != (height, width):
                raise ValueError(f"{path}: frame {count} is {frame.shape[:2]}, the first was {(height, width)}")
            writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
            count += 1
        if writer is None:
            raise ValueError(f"{path}: no frames to write")
        writer.release()
        if not staged.exists() or staged.stat().st_size == 0:
            raise OSError(f"{path}: OpenCV wrote no data")
        os.replace(staged, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
