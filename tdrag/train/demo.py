"""The end-to-end demo behind ``tdrag demo`` / ``make demo``: synthesise, prepare, train, report.

``run_demo(out)`` writes ``out/data`` (an easy synthetic DFEW-format set), ``out/cache`` (its
frame cache) and ``out/run`` (a small TDRAG trained on the CPU, with its report), using
``configs/synthetic_demo.yaml``. Each step reuses what a previous call left when its settings
match, so a second call only re-evaluates. This is the one place that provisions the demo: the
notebooks and the analysis package ask for it through :func:`run_demo` (or :func:`ensure_demo`).

Nothing but tdrag's own output is replaced: a new synthetic set replaces only a previous one, the
cache is rebuilt in place when its sources changed, and the run keeps any file that is not tdrag's.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from tdrag.config import Config, ConfigError, load_config, replace
from tdrag.runs.layout import RunPaths

log = logging.getLogger(__name__)

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "synthetic_demo.yaml"


#: The seconds-long demo (``small=True``) for CI and a first try, as overrides of the demo config:
#: 35 clips (5 per class), a width-8 model with a 16-unit GRU, 2 epochs of batches of 8.
SMALL_OVERRIDES: tuple[str, ...] = (
    "synth.clips=35", "model.width=8", "model.head.hidden=16", "model.head.dropout=0.0", "train.epochs=2",
    "train.batch_size=8", "train.lr=0.003", "train.weight_decay=0.0001", "train.warmup_epochs=0",
    "data.val_fraction=0.2",
)


def demo_config(out: str | os.PathLike, config_path: str | os.PathLike | None = None,
                overrides: Sequence[str] = (), small: bool = False) -> Config:
    """The demo's config with data.root, data.cache and train.run_dir under ``out``.

    ``small`` applies :data:`SMALL_OVERRIDES` (before ``overrides``).
    """
    path = Path(config_path) if config_path else DEMO_CONFIG
    if not path.is_file():
        raise ConfigError(f"{path}: demo config not found (run from a clone of the repository, or pass --config)")
    config = load_config(path, (*(SMALL_OVERRIDES if small else ()), *overrides))
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
            and meta.get("size") == s.render_size and meta.get("num_clips") == s.clips
            and meta.get("layout", "dfew") == s.layout)


def _layout_option(synth) -> dict:
    """``layout=`` for generate_dataset when the set is not in DFEW's layout (other layouts are
    written by the same generator; see tdrag.data.synthetic)."""
    return {} if synth.layout == "dfew" else {"layout": synth.layout}


def run_demo(
    out: str | os.PathLike = "runs/demo",
    callback=None,
    config_path: str | os.PathLike | None = None,
    overrides: Sequence[str] = (),
    fresh: bool = False,
    progress: bool = True,
    small: bool = False,
) -> Path:
    """Synthesise, prepare and train; return the run directory ``out/run``.

    Args:
        out: demo folder.
        callback: passed to ``tdrag.train.fit.fit`` (each epoch's log row).
        config_path: demo config (default ``configs/synthetic_demo.yaml``).
        overrides: ``key=value`` config overrides.
        fresh: rebuild everything instead of reusing a previous demo in ``out``.
        progress: progress bars.
        small: the seconds-long demo (:data:`SMALL_OVERRIDES`).
    """
    config = demo_config(out, config_path, overrides, small=small)
    return provision(config, callback=callback, fresh=fresh, progress=progress)


def ensure_demo(out: str | os.PathLike = "runs/demo", small: bool = False, callback=None,
                progress: bool = True) -> Path:
    """``out/run`` when it holds a finished demo run; otherwise :func:`run_demo` makes it there.

    What notebooks call when they are asked (by a visible parameter) to work on the demo.
    """
    run_dir = Path(out) / "run"
    if RunPaths(run_dir).finished():
        return run_dir
    return run_demo(out, callback=callback, progress=progress, small=small)


def provision(config: Config, callback=None, fresh: bool = False, progress: bool = True,
              workers: int | None = None) -> Path:
    """Make (or reuse) ``config``'s synthetic data, its cache and its trained run; return the run dir.

    ``config.synth`` says what to render into ``data.root``; ``data.cache`` and ``train.run_dir``
    are made from it. Used by :func:`run_demo` and by notebooks that ask for a demo run.
    """
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset
    from tdrag.train.fit import fit

    data_root, cache_dir, run_dir = Path(config.data.root), Path(config.data.cache), Path(config.train.run_dir)
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    timings = {}
    started = time.perf_counter()
    new_data = fresh or not _synthetic_matches(data_root, config)
    if new_data:
        s = config.synth
        log.info("synthesising %d %s clips into %s", s.clips, s.preset, data_root)
        generate_dataset(data_root, clips=s.clips, preset=s.preset, seed=s.render_seed, size=s.render_size,
                         workers=workers, progress=progress, **_layout_option(s))
    timings["synthesise"] = time.perf_counter() - started

    started = time.perf_counter()
    # New clips change the cache's sources: prepare rebuilds it (its fingerprint differs).
    prepare_cache(data_root, cache_dir, dataset=config.data.dataset, frames=config.data.frames, size=config.data.size,
                  keyframes=config.data.keyframes, workers=workers, overwrite=True, progress=progress)
    timings["prepare"] = time.perf_counter() - started

    started = time.perf_counter()
    # A run trained on other clips is replaced (tdrag's files only); otherwise it is resumed (a
    # finished run is only re-evaluated).
    fit(config, callback=callback, resume=not new_data, overwrite=new_data, progress=progress)
    timings["train"] = time.perf_counter() - started
    log.info("demo timings: %s", ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return run_dir
