"""Session fixtures: a tiny synthetic DFEW-format set, its frame cache, and a tiny trained run.

Registered in tests/conftest.py so every test module can ask for them:

- ``tiny_cache``: :class:`TinyData` (``root``: synthetic tree with masks, ``cache``: frame cache,
  T = 8 frames of 32x32, 35 clips over 5 folds).
- ``tiny_run``: a run directory trained for 2 epochs on fold 1 of ``tiny_cache`` with
  :func:`tiny_config` (TDRAG of width 8, 28x28 crops, CPU): config.yaml, log.csv, checkpoints,
  predictions.csv, report/. Treat it as read-only (copy it before changing it).
- ``tiny_mafw_run``: the same kind of run on a synthetic set in MAFW's layout (11 classes, MAFW's
  names and order, :data:`TINY_MAFW_CLIPS` clips, T = 6): the case where a DFEW default would show.

Sizes are chosen for seconds on 2 CPU cores, not for accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tdrag.config import Config, replace

TINY_CLIPS = 35
TINY_FRAMES = 8
TINY_SIZE = 32
TINY_CROP = 28
#: Enough clips for every one of MAFW's 11 classes in fold 1's training and test splits.
TINY_MAFW_CLIPS = 66


@dataclass(frozen=True)
class TinyData:
    root: Path
    cache: Path


def make_tiny_data(folder: Path) -> TinyData:
    """Synthesise and prepare the tiny set under ``folder`` (``data/`` and ``cache/``)."""
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset

    root = generate_dataset(folder / "data", clips=TINY_CLIPS, preset="easy", seed=0, size=TINY_SIZE)
    cache = prepare_cache(root, folder / "cache", frames=TINY_FRAMES, size=TINY_SIZE, keyframes="redundancy",
                          workers=1, progress=False)
    return TinyData(root=Path(root), cache=Path(cache))


def tiny_config(data: TinyData, run_dir: str | Path, **train: Any) -> Config:
    """A config that trains a width-8 TDRAG for 2 epochs on fold 1 of ``data`` on the CPU."""
    config = replace(
        Config(),
        data={"root": str(data.root), "cache": str(data.cache), "fold": 1, "frames": TINY_FRAMES,
              "size": TINY_SIZE, "crop": TINY_CROP, "num_workers": 0},
        model={"name": "tdrag", "width": 8, "gru_hidden": 16, "dropout": 0.2},
        train={"run_dir": str(run_dir), "epochs": 2, "batch_size": 8, "optimizer": "adamw", "lr": 0.003,
               "weight_decay": 0.01, "schedule": "cosine", "warmup_epochs": 1, "device": "cpu", "seed": 0},
    )
    return replace(config, train=train) if train else config


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> TinyData:
    return make_tiny_data(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def tiny_run(tiny_cache, tmp_path_factory) -> Path:
    from tdrag.train.fit import fit

    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    fit(tiny_config(tiny_cache, run_dir), progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_mafw_run(tmp_path_factory) -> Path:
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset
    from tdrag.train.fit import fit

    folder = tmp_path_factory.mktemp("tiny_mafw")
    root = generate_dataset(folder / "data", clips=TINY_MAFW_CLIPS, preset="easy", seed=0, size=TINY_SIZE,
                            layout="mafw")
    cache = prepare_cache(root, folder / "cache", frames=6, size=TINY_SIZE, keyframes="uniform", workers=1,
                          progress=False, dataset="mafw")
    config = tiny_config(TinyData(root=Path(root), cache=Path(cache)), folder / "run")
    config = replace(config, data={"dataset": "mafw", "frames": 6, "keyframes": "uniform"}, model={"num_classes": 11})
    fit(config, progress=False)
    return folder / "run"
