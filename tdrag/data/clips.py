"""What every dataset reader shares: clip records, the report of bad clips, frame files.

Each reader (``tdrag.data.dfew``, ``ferv39k``, ``mafw``) turns its dataset's split files into
``SplitResult``s of ``Clip``s and ``SkippedClip``s; the frame cache (``tdrag prepare``) then
decodes them the same way whatever the dataset. The pieces here are written once for all of them:

- **Frame files** (:func:`list_frames`): the image files of a clip folder, ordered by the number
  in their names (``2.jpg`` before ``10.jpg``). Hidden files are never frames (macOS leaves
  ``._1.jpg`` AppleDouble sidecars and ``.DS_Store`` beside copied files; they are not images).
  When a folder has numbered frames, an image without a number (``cover.jpg``) is not a frame
  either: it is left out and listed in ``FrameListing.ignored`` so the cache manifest can say so.
- **Fingerprint**: a digest of each clip's frame files (names, sizes, modification times), so a
  cache knows when its sources changed.
- **Bad input** is a ``ClipError`` (one clip: skipped and listed, or raised with ``strict``) or a
  ``DatasetError`` (a whole folder or split file: always raised, since skipping it would silently
  train on nothing); both name the path and the problem.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tdrag.errors import TdragError

log = logging.getLogger(__name__)

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "test")

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


class DatasetError(TdragError, ValueError):
    """A dataset folder, split file or clip that cannot be used; the message names the path and the problem."""


class ClipError(DatasetError):
    """A clip whose frames cannot be read (missing/empty folder, a frame that does not decode)."""


@dataclass(frozen=True)
class Clip:
    """One labelled clip.

    Attributes:
        video_id: the clip's name in its dataset (DFEW: the zero-padded folder name ``"00042"``;
            FERV39k: its relative path; MAFW: the clip name without ``.mp4``).
        label: 0-based class index in the dataset's class list.
        frames: frame files in frame-number order.
        clip_dir: the clip's folder.
        digest: fingerprint of the frame files (names, sizes, modification times).
        ignored: image files in the folder that are not frames (unnumbered ones such as ``cover.jpg``).
    """

    video_id: str
    label: int
    frames: tuple[Path, ...]
    clip_dir: Path
    digest: str = ""
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedClip:
    """A clip left out, with where and why."""

    video_id: str
    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"video_id": self.video_id, "path": self.path, "reason": self.reason}


@dataclass
class SplitResult:
    """The clips of one fold's split, and those skipped with their reasons.

    ``split_file`` is the list the split was read from (a DFEW CSV, a FERV39k or MAFW text file).
    """

    fold: int
    split: str
    split_file: Path
    clips: list[Clip] = field(default_factory=list)
    skipped: list[SkippedClip] = field(default_factory=list)

    @property
    def csv_path(self) -> Path:
        """The split file (DFEW's name for it)."""
        return self.split_file


@dataclass(frozen=True)
class FrameListing:
    """The frames of a clip folder (see :func:`list_frames`)."""

    frames: tuple[Path, ...]
    ignored: tuple[str, ...]
    digest: str


def frame_number(path: Path | str) -> int | None:
    """The last number in a frame file's stem (``"frame_0012.jpg" -> 12``), or None."""
    match = _LAST_NUMBER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def is_frame_name(name: str) -> bool:
    """An image file name that can be a frame: a known suffix and not hidden (``._1.jpg``, ``.x.jpg``)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in FRAME_SUFFIXES


def sorted_frames(paths: Sequence[Path] | list[Path]) -> list[Path]:
    """Image files sorted by the number in their names (``2.jpg`` before ``10.jpg``).

    Hidden files are dropped; files without a number sort after numbered ones, by name. (Use
    :func:`list_frames` to read a clip folder: it also leaves unnumbered images out.)
    """
    def key(p: Path) -> tuple[int, int, str]:
        n = frame_number(p)
        return (0, n, p.name) if n is not None else (1, 0, p.name)

    return sorted((p for p in paths if is_frame_name(p.name)), key=key)


def _digest(entries: list[tuple[str, int, int]]) -> str:
    h = hashlib.sha1()
    for name, size, mtime in entries:
        h.update(f"{name}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:20]


def list_frames(folder: str | os.PathLike) -> FrameListing:
    """The frame files of one clip folder, in frame-number order, with their fingerprint.

    Frames are the non-hidden image files; when any of them has a number in its name, those
    without one are ignored (and named in ``ignored``). Raises ``OSError`` if the folder cannot
    be listed.
    """
    folder = Path(folder)
    numbered: list[tuple[int, str, os.DirEntry]] = []
    unnumbered: list[tuple[str, os.DirEntry]] = []
    with os.scandir(folder) as it:
        for entry in it:
            if not is_frame_name(entry.name) or not entry.is_file():
                continue
            n = frame_number(entry.name)
            if n is None:
                unnumbered.append((entry.name, entry))
            else:
                numbered.append((n, entry.name, entry))
    numbered.sort(key=lambda item: (item[0], item[1]))
    unnumbered.sort(key=lambda item: item[0])
    if numbered:
        chosen = [e for _, _, e in numbered]
        ignored = tuple(name for name, _ in unnumbered)
    else:
        chosen = [e for _, e in unnumbered]
        ignored = ()
    stats = []
    for entry in chosen:
        st = entry.stat()
        stats.append((entry.name, st.st_size, st.st_mtime_ns))
    return FrameListing(tuple(folder / e.name for e in chosen), ignored, _digest(stats))


class FrameFolders:
    """:func:`list_frames` with a memory: a clip listed in several split files is read once."""

    def __init__(self) -> None:
        self._listings: dict[Path, FrameListing] = {}

    def __call__(self, folder: str | os.PathLike) -> FrameListing:
        folder = Path(folder)
        if folder not in self._listings:
            self._listings[folder] = list_frames(folder)
        return self._listings[folder]


class ClipFolders:
    """The clip folders under a frames folder, looked up by name, unpadded numbers included
    (``12`` finds ``00012``), and their frame listings (:class:`FrameFolders`).

    The frames folder is listed at most once (DFEW has ~16k clip folders), and only when a name is
    not found as written.
    """

    def __init__(self, clip_root: Path) -> None:
        self.clip_root = Path(clip_root)
        self.frames = FrameFolders()
        self._by_number: dict[int, str] | None = None

    def folder_name(self, name: str) -> str | None:
        """The folder's name on disk for ``name`` as a split file writes it, or None."""
        if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name:
            return None
        if (self.clip_root / name).is_dir():
            return name
        if not name.isdigit():
            return None
        if self._by_number is None:
            self._by_number = {}
            with os.scandir(self.clip_root) as entries:
                for entry in entries:
                    if entry.name.isdigit() and entry.is_dir():
                        self._by_number.setdefault(int(entry.name), entry.name)
        return self._by_number.get(int(name))


class SplitCollector:
    """Builds one split's :class:`SplitResult` the way every reader reports bad clips.

    ``skip`` lists a clip with its path and reason (logged), or raises with ``strict``;
    ``first_time`` skips a clip listed twice; ``add_folder`` lists a clip folder's frames and adds
    the clip, or skips it when the folder is missing, unreadable or holds no frame images.

    Args:
        fold, split, split_file: what the result describes.
        strict: raise on the first bad clip instead of listing it.
        error: the reader's DatasetError subclass for row-level problems (clip folder problems
            raise ClipError).
        frames: the listing memory shared by the splits of one read.
    """

    def __init__(self, fold: int, split: str, split_file: Path, strict: bool, error: type[DatasetError],
                 frames: FrameFolders) -> None:
        self.result = SplitResult(fold=int(fold), split=split, split_file=split_file)
        self.strict = strict
        self.error = error
        self.frames = frames
        self._first_line: dict[str, int] = {}

    def skip(self, video_id: str, path: Path | str, reason: str, error: type[DatasetError] | None = None) -> None:
        if self.strict:
            raise (error or self.error)(f"{path}: {reason}")
        log.warning("skipping clip %s: %s: %s", video_id, path, reason)
        self.result.skipped.append(SkippedClip(video_id=video_id, path=str(path), reason=reason))

    def first_time(self, key: str, line: int, where: str, shown: str) -> bool:
        """True for the first row naming ``key``; a later one is skipped as listed again."""
        if key in self._first_line:
            self.skip(key, where, f"video {shown!r} is listed again (first at line {self._first_line[key]})")
            return False
        self._first_line[key] = line
        return True

    def add_folder(self, video_id: str, label: int, folder: Path, where: str) -> None:
        """Add the clip in ``folder`` (listed at ``where``), or skip it naming what is wrong."""
        if not folder.is_dir():
            self.skip(video_id, folder, f"clip folder missing (listed at {where})", ClipError)
            return
        try:
            listing = self.frames(folder)
        except OSError as exc:
            self.skip(video_id, folder, f"cannot list the clip folder ({exc.strerror or exc})", ClipError)
            return
        if not listing.frames:
            self.skip(video_id, folder, f"clip folder has no frame images (listed at {where})", ClipError)
            return
        self.result.clips.append(Clip(video_id=video_id, label=label, frames=listing.frames, clip_dir=folder,
                                      digest=listing.digest, ignored=listing.ignored))


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a (small) file's bytes: split files are fingerprinted by content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]


def decode_image(path: Path | str, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode one frame file with OpenCV (``flags`` as for ``cv2.imread``; BGR for colour).

    Raises:
        ClipError: naming the file when it is empty, does not decode, or is a JPEG cut short.
    """
    try:
        buffer = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ClipError(f"{path}: cannot read frame ({exc.strerror or exc})") from exc
    if buffer.size == 0:
        raise ClipError(f"{path}: empty frame file")
    image = cv2.imdecode(buffer, flags)
    if image is None:
        raise ClipError(f"{path}: frame does not decode as an image")
    # libjpeg fills the rest of a truncated JPEG with grey and only warns; the end-of-image
    # marker (FF D9) cannot occur inside entropy-coded data, so its absence means a cut file.
    if buffer[:2].tobytes() == b"\xff\xd8" and b"\xff\xd9" not in buffer[-4096:].tobytes():
        raise ClipError(f"{path}: JPEG is truncated (no end-of-image marker)")
    return image


def load_frames(clip: Clip, indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode a clip's frames (all, or those at ``indices``).

    Returns:
        ``(L, H, W, 3)`` uint8 RGB.

    Raises:
        ClipError: naming the frame that does not decode or whose size differs from the first.
    """
    paths = clip.frames if indices is None else [clip.frames[int(i)] for i in indices]
    if not paths:
        raise ClipError(f"{clip.clip_dir}: clip has no frames")
    frames = []
    for path in paths:
        image = cv2.cvtColor(decode_image(path), cv2.COLOR_BGR2RGB)
        if frames and image.shape != frames[0].shape:
            raise ClipError(f"{path}: frame size {image.shape[:2]} differs from the clip's first frame {frames[0].shape[:2]}")
        frames.append(image)
    return np.stack(frames)
