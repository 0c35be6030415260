"""What ``01_train.ipynb`` calls: the config it trains with, the training itself, and the cache's
clip counts. Provisioning of synthetic data stays in :mod:`tdrag.train.demo` (``demo_config``,
``provision``); nothing here re-implements it.

    config = training_config("../runs/notebook/run", small=True)     # the demo config, run dir moved
    run_dir = train(config, callback=LiveCurves())                    # data, cache and run, reused when present
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tdrag.config import Config, load_config, replace

#: The DFEW recipe a real data root trains with unless a preset is given.
DFEW_PRESET = Path(__file__).resolve().parents[2] / "configs" / "dfew_tdrag.yaml"


def training_config(run_dir: str | os.PathLike, data_root: str | os.PathLike = "", preset: str | os.PathLike = "",
                    model: str = "tdrag", fold: int = 1, epochs: int = 0, device: str = "auto",
                    cache_dir: str | os.PathLike = "", small: bool = False) -> Config:
    """The Config ``01_train`` trains with.

    Args:
        run_dir: where the run is written.
        data_root: a DFEW-format root; "" = the synthetic demo set (``tdrag.train.demo.demo_config``),
            rendered into ``<run_dir>/../data``.
        preset: a YAML preset for a real root (default ``configs/dfew_tdrag.yaml``).
        model, fold: model variant and fold; epochs: 0 keeps the config's; device: "auto", "cpu", ...
        cache_dir: frame cache folder (default ``<run_dir>/../cache``).
        small: the seconds-long demo sizes (``tdrag.train.demo.SMALL_OVERRIDES``); synthetic data only.
    """
    from tdrag.train.demo import demo_config

    run_dir = Path(run_dir)
    cache = Path(cache_dir) if cache_dir else run_dir.parent / "cache"
    if not data_root:
        config = demo_config(run_dir.parent, small=small)
    else:
        config = load_config(preset or DFEW_PRESET)
        config = replace(config, data={"root": str(data_root)})
    train = {"run_dir": str(run_dir), "device": device}
    if epochs:
        train["epochs"] = int(epochs)
    return replace(config, data={"cache": str(cache), "fold": int(fold)}, model={"name": model}, train=train)


def train(config: Config, callback=None, overwrite: bool = False, progress: bool = True) -> Path:
    """Prepare the frame cache and train ``config``; return the run directory.

    A synthetic (or not yet rendered) data root goes through ``tdrag.train.demo.provision`` (render,
    prepare, train; each step reused when its settings match; ``overwrite`` renders afresh). A
    real root is prepared with ``tdrag.data.prepare.prepare_cache`` (reused when finished with the
    same settings) and trained with ``tdrag.train.fit.fit`` (resumed unless ``overwrite``).
    """
    from tdrag.data.synthetic import is_synthetic_root

    root = Path(config.data.root)
    if not root.exists() or is_synthetic_root(root):
        from tdrag.train.demo import provision

        return Path(provision(config, callback=callback, fresh=overwrite, progress=progress))
    from tdrag.data.prepare import prepare_cache
    from tdrag.train.fit import fit

    d = config.data
    prepare_cache(d.root, d.cache, dataset=d.dataset, frames=d.frames, size=d.size, keyframes=d.keyframes,
                  progress=progress)
    fit(config, callback=callback, resume=not overwrite, overwrite=overwrite, progress=progress)
    return Path(config.train.run_dir)


def cache_counts(cache, fold: int, class_names: Sequence[str] | None = None):
    """Clips per class in the fold's train and test splits (pandas DataFrame, plus a total row)."""
    import pandas as pd

    names = list(class_names or cache.class_names)
    labels = np.asarray(cache.labels)
    table = pd.DataFrame(
        {split: np.bincount(labels[cache.rows(fold, split)], minlength=len(names))[: len(names)]
         for split in ("train", "test")},
        index=pd.Index(names, name="class"),
    )
    table.loc["total"] = table.sum()
    return table
