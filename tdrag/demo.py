"""The end-to-end demo behind ``tdrag demo`` / ``make demo``: synthesise, prepare, train, report.

``run_demo(out)`` writes ``out/data`` (an easy synthetic DFEW-format set), ``out/cache`` (its
frame cache) and ``out/run`` (a small TDRAG trained on the CPU, with its report), using
``configs/synthetic_demo.yaml``. Each step reuses what a previous call left when its settings
match, so a second call only re-evaluates.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from tdrag.config import Config, ConfigError, load_config, replace

log = logging.getLogger(__name__)

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "synthetic_demo.yaml"


def demo_config(out: str | os.PathLike, config_path: str | os.PathLike | None = None,
                overrides: Sequence[str] = ()) -> Config:
    """The demo's config with data.root, data.cache and train.run_dir under ``out``."""
    path = Path(config_path) if config_path else DEMO_CONFIG
    if not path.is_file():
        raise ConfigError(f"{path}: demo config not found (run from a clone of the repository, or pass --config)")
    config = load_config(path, overrides)
    out = Path(out)
    return replace(config, data={"root": str(out / "data"), "cache": str(out / "cache")},
                   train={"run_dir": str(out / "run")})


def _synthetic_matches(root: Path, config: Config) -> bool:
    try:
        meta = json.loads((root / "synthetic" / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    s = config.synth
    return (meta.get("complete") is True and meta.get("preset") == s.preset and meta.get("seed") == s.render_seed
            and meta.get("size") == s.render_size and meta.get("num_clips") == s.clips)


def run_demo(
    out: str | os.PathLike = "runs/demo",
    callback=None,
    config_path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    fresh: bool = False,
    progress: bool = True,
) -> Path:
    """Synthesise, prepare and train; return the run directory ``out/run``.

    Args:
        out: demo folder.
        callback: passed to ``tdrag.engine.fit`` (each epoch's log row).
        config_path: demo config (default ``configs/synthetic_demo.yaml``).
        overrides: ``key=value`` config overrides.
        fresh: rebuild everything instead of reusing a previous demo in ``out``.
        progress: progress bars.
    """
    from tdrag.data.cache import prepare_cache
    from tdrag.data.synthetic import generate_dataset
    from tdrag.engine import fit

    config = demo_config(out, config_path, overrides)
    data_root, cache_dir, run_dir = Path(config.data.root), Path(config.data.cache), Path(config.train.run_dir)
    timings = {}
    started = time.perf_counter()
    if fresh or not _synthetic_matches(data_root, config):
        s = config.synth
        log.info("synthesising %d %s clips into %s", s.clips, s.preset, data_root)
        generate_dataset(data_root, clips=s.clips, preset=s.preset, seed=s.render_seed, size=s.render_size,
                         workers=min(2, os.cpu_count() or 1), progress=progress)
        # New clips: a cache or run made from the old ones would be stale.
        shutil.rmtree(cache_dir, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
    timings["synthesise"] = time.perf_counter() - started

    started = time.perf_counter()
    prepare_cache(data_root, cache_dir, frames=config.data.frames, size=config.data.size,
                  keyframes=config.data.keyframes, workers=min(2, os.cpu_count() or 1), overwrite=True,
                  progress=progress)
    timings["prepare"] = time.perf_counter() - started

    started = time.perf_counter()
    fit(config, callback=callback, resume=not fresh, overwrite=fresh, progress=progress)
    timings["train"] = time.perf_counter() - started
    log.info("demo timings: %s", ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return run_dir
