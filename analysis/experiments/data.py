"""The synthetic set of an experiment and its frame caches, built once under the output folder.

``OUT/data`` holds the set a recipe's ``synth`` section renders (preset, clips, render seed and size),
``OUT/cache_<method>`` its frames with a keyframe method at the recipe's T, and
``OUT/cache_<method>_t<T>`` the same at another T (made when a run asks for it). Each is reused
when current, so a killed benchmark continues where it stopped::

    paths = prepare_data(Path("runs/ablation"), load_config(MEDIUM), clips=None, workers=2)
    paths["root"], paths["redundancy"], paths["uniform"]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tdrag.config import Config

#: The recipe of the ablation: the `medium` preset and its CPU training schedule.
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synthetic_medium.yaml"


def prepare_data(out: Path, config: Config, clips: int | None, workers: int,
                 methods: Sequence[str] = ("redundancy", "uniform"), seed: int | None = None) -> dict[str, Path]:
    """The set of ``config.synth`` (``clips`` and render ``seed`` when given) under ``out/data`` and
    one cache per keyframe method; returns ``{"root": set, method: cache, ...}``."""
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root, load_meta

    s = config.synth
    clips = clips or s.clips
    seed = s.render_seed if seed is None else int(seed)
    root = out / "data"
    meta = load_meta(root) if is_synthetic_root(root) else {}
    if any(meta.get(k) != v for k, v in {"num_clips": clips, "preset": s.preset, "seed": seed}.items()):
        generate_dataset(root, clips=clips, preset=s.preset, seed=seed, size=s.render_size, workers=workers,
                         progress=True)
    paths = {"root": root}
    for method in methods:
        paths[method] = cache_for(out, root, config, method, workers)
    return paths


def cache_for(out: Path, root: Path, config: Config, method: str, workers: int, name: str | None = None) -> Path:
    """The frame cache ``out/cache_<name>`` (default name: ``method``) of ``root`` with keyframe
    ``method`` and the config's T and size (built once; a no-op when current)."""
    from tdrag.data.prepare import prepare_cache

    return prepare_cache(root, out / f"cache_{name or method}", frames=config.data.frames, size=config.data.size,
                         keyframes=method, workers=workers, overwrite=True, progress=True)


def ensure_cache(paths: dict[str, Path], config: Config, base: Config, workers: int) -> Path:
    """The cache of ``paths["root"]`` for ``config``'s keyframe method and T, built on demand into
    ``paths`` (keyed by the method, or ``<method>_t<T>`` for a T other than ``base``'s)."""
    method, frames = config.data.keyframes, config.data.frames
    key = method if frames == base.data.frames else f"{method}_t{frames}"
    if key not in paths:
        root = Path(paths["root"])
        paths[key] = cache_for(root.parent, root, config, method, workers, name=key)
    return paths[key]
