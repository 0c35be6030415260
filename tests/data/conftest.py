"""Fixtures that build small DFEW-format trees on disk, in each variant seen in the wild.

``dfew_tree(root, ...)`` writes ``Clip/<frames_dir>/<5-digit id>/1.jpg ... <L>.jpg`` with cv2 and
the ten split CSVs; clip ``i`` (0-based) is in the test set of fold ``i % 5 + 1`` and in the
training sets of the other four folds, with CSV label ``i % 7 + 1``. Each frame is a textured
pattern whose mean brightness grows with the frame number, so tests can check frame order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest


@dataclass
class Tree:
    root: Path
    clip_root: Path
    ids: list[str]
    labels: dict[str, int]          # 0-based
    test_fold: dict[str, int]       # fold whose test set holds the clip
    lengths: dict[str, int] = field(default_factory=dict)

    def csv(self, fold: int, split: str) -> Path:
        parent = self.root / "EmoLabel_DataSplit"
        return next(parent.glob(f"{split}(single*labeled)")) / f"set_{fold}.csv"


def frame_image(clip: int, n: int, size: int) -> np.ndarray:
    """A BGR frame: smooth texture (clip-specific) plus brightness 8*n (frame-number specific)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 40 + 30 * np.sin(xx / (3 + clip % 5)) * np.cos(yy / 4 + n / 3)
    img = np.stack([base + 8 * n, base + 4 * n + 20 * (clip % 3), base + 2 * n], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_dfew_tree(
    root: Path,
    num_clips: int = 10,
    lengths: int | list[int] = 16,
    size: int = 32,
    underscore: bool = False,
    pad_ids: bool = True,
    nested: bool = False,
    frames_dir: str = "clip_224x224",
    folds: tuple[int, ...] = (1, 2, 3, 4, 5),
) -> Tree:
    root = Path(root)
    clip_root = root / "Clip" / frames_dir
    if nested:
        clip_root = clip_root / frames_dir
    if isinstance(lengths, int):
        lengths = [lengths] * num_clips
    ids = [f"{i + 1:05d}" for i in range(num_clips)]
    tree = Tree(root=root, clip_root=clip_root, ids=ids, labels={}, test_fold={})
    for i, vid in enumerate(ids):
        folder = clip_root / vid
        folder.mkdir(parents=True)
        for n in range(1, lengths[i] + 1):
            cv2.imwrite(str(folder / f"{n}.jpg"), frame_image(i, n, size), [cv2.IMWRITE_JPEG_QUALITY, 95])
        tree.labels[vid] = i % 7
        tree.test_fold[vid] = i % 5 + 1
        tree.lengths[vid] = lengths[i]
    sep = "_" if underscore else "-"
    for split in ("train", "test"):
        folder = root / "EmoLabel_DataSplit" / f"{split}(single{sep}labeled)"
        folder.mkdir(parents=True)
        for k in folds:
            lines = ["video_name,label"]
            for vid in ids:
                if (tree.test_fold[vid] == k) == (split == "test"):
                    name = vid if pad_ids else str(int(vid))
                    lines.append(f"{name},{tree.labels[vid] + 1}")
            (folder / f"set_{k}.csv").write_text("\n".join(lines) + "\n")
    return tree


@pytest.fixture
def dfew_tree(tmp_path):
    """Factory: ``dfew_tree(**options)`` builds a tree under a fresh tmp folder."""
    counter = iter(range(1000))

    def build(**options) -> Tree:
        return write_dfew_tree(tmp_path / f"dfew{next(counter)}", **options)

    return build
