"""A run's data: the cache checked against the config, and the fold's train / val / test rows.

    data = load_run_data(config)        # RunData(cache, train_rows, test_rows, val_rows)

Every mismatch between the config and the cache (keyframe method, T, crop larger than the cached
frames, number of classes, a fold the cache does not hold) is a ConfigError naming the key,
raised before anything is trained or written. A checkpoint's cache fingerprint is held against
the cache by :func:`cache_rebuilt_since` (a resume refuses a rebuilt cache, ``tdrag eval`` warns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tdrag import ownership
from tdrag.config import Config, ConfigError
from tdrag.data.keyframes import KEYFRAME_RULES


@dataclass
class RunData:
    """The cache and the rows of one run: training, test and (when held out) validation rows."""

    cache: Any
    train_rows: np.ndarray
    test_rows: np.ndarray
    val_rows: np.ndarray | None

    @property
    def class_names(self) -> list[str]:
        return list(self.cache.class_names)


def check_cache(cache, config: Config) -> None:
    """Refuse a cache that does not fit the config: keyframes, T, crop, classes, fold."""
    method = cache.manifest.get("keyframes")
    if method is not None and method != config.data.keyframes:
        raise ConfigError(
            f"data.keyframes: {config.data.keyframes!r}, but the cache {cache.path} was prepared with "
            f"keyframes={method!r}; point data.cache at a matching cache"
        )
    # Caches from before rule versions were recorded hold version 1 of their method.
    rule = (cache.manifest.get("settings") or {}).get("keyframe_rule", 1)
    if method is not None and rule != KEYFRAME_RULES.get(method, 1):
        raise ConfigError(
            f"{cache.path}: prepared with version {rule} of the {method!r} keyframe rule, this tdrag selects by "
            f"version {KEYFRAME_RULES[method]}; rebuild it with tdrag prepare ... --overwrite"
        )
    if cache.num_frames != config.data.frames:
        raise ConfigError(f"data.frames: {config.data.frames}, but the cache {cache.path} holds T={cache.num_frames} "
                          "frames per clip")
    if config.data.crop > cache.size:
        raise ConfigError(f"data.crop: {config.data.crop} exceeds the cached frame size {cache.size} of {cache.path}")
    classes = cache.class_names
    if config.model.num_classes != len(classes):
        raise ConfigError(f"model.num_classes: {config.model.num_classes}, but the cache {cache.path} holds "
                          f"{len(classes)} classes ({cache.dataset}: {', '.join(classes)})")
    cache.check_fold(config.data.fold)


def cache_rebuilt_since(state: dict[str, Any], cache) -> bool:
    """Whether ``cache`` was rebuilt from other sources since the checkpoint ``state`` was trained
    on it (their fingerprints differ; a checkpoint or cache without one is given the benefit)."""
    before, now = state.get("cache_fingerprint"), cache.fingerprint
    return bool(before and now and before != now)


def check_run_dir_apart(run_dir: str | Path, config: Config, cache) -> None:
    """Refuse a run directory (or a cross-validation folder) that is, holds, or lies inside its
    cache or data set: ``tdrag prepare --overwrite`` and ``tdrag synth`` replace those as a whole,
    with a run inside. Raised before anything is written there (OutputError naming the key)."""
    roots = [config.data.root or None, (cache.manifest.get("settings") or {}).get("root")]
    ownership.check_not_input(run_dir, [cache.path, *roots], "train.run_dir")
    ownership.check_not_inside(run_dir, [cache.path], "train.run_dir",
                               "a frame cache, which `tdrag prepare --overwrite` replaces as a whole")
    ownership.check_not_inside(run_dir, roots, "train.run_dir",
                               "a data set root, which `tdrag synth` replaces as a whole when synthetic")


def load_run_data(config: Config) -> RunData:
    """Open ``config.data.cache``, check it against the config, split off the validation rows."""
    from tdrag.data.cache import open_cache

    if not config.data.cache:
        raise ConfigError("data.cache: empty; prepare a frame cache (`tdrag prepare`) and set data.cache=PATH")
    cache = open_cache(config.data.cache)
    check_cache(cache, config)
    train_rows = cache.rows(config.data.fold, "train")
    test_rows = cache.rows(config.data.fold, "test")
    val_rows = None
    if config.data.val_fraction > 0:
        from tdrag.data.loader import split_train_val

        train_rows, val_rows = split_train_val(cache.labels[train_rows], train_rows, config.data.val_fraction,
                                               seed=config.train.seed)
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ConfigError(f"data.fold: fold {config.data.fold} of {cache.path} has {len(train_rows)} training and "
                          f"{len(test_rows)} test clips; both must be non-empty")
    return RunData(cache, train_rows, test_rows, val_rows)
