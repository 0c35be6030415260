"""What the notebooks share: their parameters, a demo run made on demand, and an opened run.

The notebooks stay thin: each starts with a cell tagged ``parameters`` (papermill convention),
then calls :func:`open_run` (analysis notebooks) or the engine (``01_train``). When the run they
point at does not exist and sits at a demo location (``<root>/run``), :func:`ensure_demo_run`
synthesises a DFEW-format dataset, prepares its cache and trains a model there, exactly as
``make demo`` does, so every notebook runs top to bottom on a fresh machine.

The same module lets tests (and users) execute a notebook with injected parameters
(:func:`execute_notebook`), like papermill: a cell tagged ``injected-parameters`` is inserted after
the ``parameters`` cell, so the notebook's own defaults stay visible above it.

Example::

    run = open_run("../runs/demo/run", small=True)      # trains the demo first if missing
    x = run.clips(run.rows[:4])                         # (4, 3, T, crop, crop) normalised
    probs = run.model(x).softmax(1)
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tdrag.config import Config, config_from_dict, replace
from tdrag.data.labels import DFEW_CLASSES

log = logging.getLogger(__name__)

# Tiny sizes for `small=True`: a model that trains in seconds on 2 CPU cores, for CI and a first
# try. 35 clips = 5 per class; 8 keyframes of 64 px cropped to 56.
SMALL_DEMO = {
    "clips": 35,
    "preset": "easy",
    "seed": 0,
    "synth_size": 64,
    "frames": 8,
    "size": 64,
    "crop": 56,
    "width": 8,
    "gru_hidden": 16,
    "epochs": 2,
    "batch_size": 8,
}


def _has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / "best.pt").is_file() or (run_dir / "checkpoints" / "last.pt").is_file()


def small_config(data_root: str | os.PathLike, cache_dir: str | os.PathLike, run_dir: str | os.PathLike,
                 model: str = "tdrag", fold: int = 1, epochs: int | None = None) -> Config:
    """The config of a tiny CPU run (:data:`SMALL_DEMO` sizes) on ``data_root`` / ``cache_dir``."""
    s = SMALL_DEMO
    cfg = config_from_dict({})
    return replace(
        cfg,
        data={"root": str(data_root), "cache": str(cache_dir), "fold": int(fold), "frames": s["frames"],
              "size": s["size"], "crop": s["crop"], "num_workers": 0},
        model={"name": model, "width": s["width"], "gru_hidden": s["gru_hidden"], "dropout": 0.0},
        train={"run_dir": str(run_dir), "epochs": int(epochs or s["epochs"]), "batch_size": s["batch_size"],
               "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "device": "cpu", "amp": False,
               "channels_last": False, "compile": False},
    )


def ensure_demo_run(root: str | os.PathLike, small: bool = False, callback=None) -> Path:
    """Return ``<root>/run``, making ``<root>/data``, ``<root>/cache`` and the run when missing.

    Each piece already present (a synthetic tree with ``synthetic/meta.json``, a complete cache,
    a run with a checkpoint) is reused, so calling this again is cheap. ``small=False`` gives what
    ``tdrag demo --out <root>`` gives; ``small=True`` the tiny :data:`SMALL_DEMO` sizes.

    Args:
        root: demo directory.
        small: tiny sizes (seconds on a CPU) instead of the demo's.
        callback: passed to ``tdrag.engine.fit`` (called with each epoch's log row).
    """
    root = Path(root)
    run_dir = root / "run"
    if _has_checkpoint(run_dir):
        return run_dir
    if not small:
        from tdrag.demo import run_demo

        log.info("no trained run in %s: running the demo there (as `make demo`)", run_dir)
        return Path(run_demo(root, callback=callback))
    from tdrag.trainer import fit

    config = small_config(ensure_synthetic_data(root / "data", small=True), root / "cache", run_dir)
    ensure_cache(config, workers=0)
    log.info("no trained run in %s: training the small demo there", run_dir)
    fit(config, callback=callback)
    return run_dir


REPO_ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC_PRESET = REPO_ROOT / "configs" / "synthetic_demo.yaml"
DFEW_PRESET = REPO_ROOT / "configs" / "dfew_tdrag.yaml"


def read_preset(path: str | os.PathLike) -> tuple[Config, dict[str, Any]]:
    """A YAML preset as ``(Config, synth section)``; the ``synth`` section (synthetic data sizes,
    used by ``tdrag demo``) is not part of Config and comes back separately (empty if absent)."""
    import yaml

    from tdrag.config import ConfigError

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    synth = dict(raw.pop("synth", None) or {})
    return config_from_dict(raw, source=str(path)), synth


def ensure_synthetic_data(root: str | os.PathLike, small: bool = False) -> Path:
    """A synthetic DFEW-format tree at ``root`` (made unless ``root/synthetic/meta.json`` exists).

    Sizes: :data:`SMALL_DEMO` when ``small``, else the ``synth`` section of
    ``configs/synthetic_demo.yaml`` (what ``make demo`` renders).
    """
    from tdrag.data.synthetic import generate_dataset

    root = Path(root)
    if (root / "synthetic" / "meta.json").is_file():
        return root
    if small:
        clips, preset, seed, size = SMALL_DEMO["clips"], SMALL_DEMO["preset"], SMALL_DEMO["seed"], SMALL_DEMO["synth_size"]
    else:
        _, synth = read_preset(SYNTHETIC_PRESET)
        clips, preset = int(synth.get("clips", 280)), str(synth.get("preset", "easy"))
        seed, size = int(synth.get("render_seed", 0)), int(synth.get("render_size", 64))
    log.info("synthesising %d %s clips into %s", clips, preset, root)
    generate_dataset(root, clips=clips, preset=preset, seed=seed, size=size)
    return root


def training_config(
    data_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    preset: str | os.PathLike | None = None,
    model: str = "tdrag",
    fold: int = 1,
    epochs: int = 0,
    device: str = "auto",
    small: bool = False,
    synthetic: bool | None = None,
) -> Config:
    """The Config ``01_train`` trains with.

    Args:
        data_root: DFEW-format root.
        run_dir: where the run is written.
        cache_dir: frame cache folder (default: ``cache`` beside the run directory).
        preset: YAML preset (default: ``configs/synthetic_demo.yaml`` for synthetic data,
            ``configs/dfew_tdrag.yaml`` otherwise); ignored when ``small``.
        model: model variant; fold: DFEW fold; epochs: 0 keeps the preset's.
        small: the tiny :data:`SMALL_DEMO` run.
        synthetic: whether ``data_root`` is synthetic (default: it has ``synthetic/meta.json``).
    """
    run_dir = Path(run_dir)
    cache_dir = Path(cache_dir) if cache_dir else run_dir.parent / "cache"
    if small:
        config = small_config(data_root, cache_dir, run_dir, model=model, fold=fold, epochs=epochs or None)
        return replace(config, train={"device": device})
    if synthetic is None:
        synthetic = (Path(data_root) / "synthetic" / "meta.json").is_file()
    config, _ = read_preset(preset or (SYNTHETIC_PRESET if synthetic else DFEW_PRESET))
    train = {"run_dir": str(run_dir), "device": device}
    if epochs:
        train["epochs"] = int(epochs)
    return replace(config, data={"root": str(data_root), "cache": str(cache_dir), "fold": int(fold)},
                   model={"name": model}, train=train)


def ensure_cache(config: Config, workers: int | None = None):
    """Prepare (once) and open the frame cache ``config.data.cache`` of ``config.data.root``.

    A finished cache with the same settings is reused as it is; one built with other settings
    (frames, size, keyframe method) raises ``CacheError`` naming the differences.
    """
    from tdrag.data.cache import open_cache, prepare_cache

    d = config.data
    prepare_cache(d.root, d.cache, frames=d.frames, size=d.size, keyframes=d.keyframes, workers=workers)
    return open_cache(d.cache)


def cache_counts(cache, fold: int, class_names: Sequence[str] = DFEW_CLASSES):
    """Clips per class in the fold's train and test splits (pandas DataFrame, plus a total row)."""
    import pandas as pd

    labels = np.asarray(cache.labels)
    table = pd.DataFrame(
        {split: np.bincount(labels[cache.rows(fold, split)], minlength=len(class_names))[: len(class_names)]
         for split in ("train", "test")},
        index=pd.Index(list(class_names), name="class"),
    )
    table.loc["total"] = table.sum()
    return table


def resolve_device(device: str = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class NotebookRun:
    """A trained run opened for analysis.

    Attributes:
        run_dir: the run directory.
        model: the model in eval mode on ``device``.
        config: the run's Config.
        cache: the run's frame cache (``tdrag.data.cache.ClipCache``).
        rows: (N,) cache rows analysed: the run's test fold, cut to ``max_clips`` clips per class.
        data_root: the DFEW-format root the cache was made from (None if it is gone).
        synthetic: whether ``data_root`` holds synthetic ground-truth masks.
        device: where the model runs.
        class_names: the class names, in label order.
    """

    run_dir: Path
    model: nn.Module
    config: Config
    cache: Any
    rows: np.ndarray
    data_root: Path | None
    synthetic: bool
    device: torch.device
    class_names: tuple[str, ...] = DFEW_CLASSES

    @property
    def crop(self) -> int:
        return int(self.config.data.crop)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 true class of each analysed row."""
        return np.asarray(self.cache.labels)[self.rows]

    def video_ids(self, rows: Sequence[int] | np.ndarray | None = None) -> list[str]:
        rows = self.rows if rows is None else rows
        return [str(self.cache.index[int(r)]["video_id"]) for r in rows]

    def rows_of_class(self, label: int) -> np.ndarray:
        """Analysed rows whose true class is ``label`` (cache order)."""
        return self.rows[self.labels == int(label)]

    def clips(self, rows: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Model input for cache ``rows``: (B, 3, T, crop, crop) float, normalised, centre crop."""
        from tdrag.data.loader import eval_transform

        rows = np.asarray(rows, dtype=np.int64)
        clips = torch.from_numpy(np.array(self.cache.frames[rows]))  # a writable copy of the memmap rows
        return eval_transform(clips.to(self.device), crop=self.crop)


def _limit_per_class(rows: np.ndarray, labels: np.ndarray, max_clips: int | None) -> np.ndarray:
    if max_clips is None:
        return rows
    keep = np.zeros(len(rows), dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[:max_clips]] = True
    return rows[keep]


def ensure_run(run_dir: str | os.PathLike, small: bool = False) -> Path:
    """``run_dir`` if it holds a trained run; else, for a demo location (a folder named ``run``),
    the demo trained there by :func:`ensure_demo_run`; else FileNotFoundError naming the path."""
    run_dir = Path(run_dir)
    if _has_checkpoint(run_dir):
        return run_dir
    if run_dir.name != "run":
        raise FileNotFoundError(
            f"{run_dir}: no checkpoints/best.pt or last.pt; train a run first "
            "(notebooks/01_train.ipynb or `tdrag train`) or point RUN_DIR at one"
        )
    return ensure_demo_run(run_dir.parent, small=small)


def open_run(
    run_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    small: bool = False,
    device: str = "auto",
    split: str = "test",
    max_clips: int | None = None,
) -> NotebookRun:
    """Load a run's model, config and cache for the analysis notebooks.

    Args:
        run_dir: a run directory (``checkpoints/best.pt`` or ``last.pt``). When it has no
            checkpoint and is named ``run``, the demo is made in its parent
            (:func:`ensure_demo_run` with ``small``); any other missing run is an error.
        data_root: the dataset root (for synthetic masks); default: the run's ``data.root``.
        small: tiny sizes for the demo made on demand, and at most 3 clips per class analysed.
        device: "auto", "cpu", "cuda", ...
        split: the fold split analysed ("test" or "train").
        max_clips: clips per class analysed (default: all, or 3 when ``small``).
    """
    from tdrag.checkpoints import load_model
    from tdrag.data.cache import open_cache

    run_dir = ensure_run(run_dir, small=small)
    dev = resolve_device(device)
    model, config = load_model(run_dir, device=str(dev))
    model.eval()
    if not config.data.cache:
        raise ValueError(f"{run_dir}/config.yaml: data.cache is empty, cannot find the clips")
    cache_dir = Path(config.data.cache)
    if not cache_dir.is_absolute() and not cache_dir.exists():
        # A relative cache path is relative to where training ran; try next to the run too.
        cache_dir = run_dir.parent / cache_dir.name
    cache = open_cache(cache_dir)
    rows = np.asarray(cache.rows(config.data.fold, split), dtype=np.int64)
    if rows.size == 0:
        raise ValueError(f"{cache_dir}: fold {config.data.fold} has no {split} clips")
    labels = np.asarray(cache.labels)[rows]
    rows = _limit_per_class(rows, labels, max_clips if max_clips is not None else (3 if small else None))
    root = Path(data_root) if data_root else (Path(config.data.root) if config.data.root else None)
    if root is not None and not root.is_dir():
        log.warning("data root %s not found: ground-truth masks unavailable", root)
        root = None
    synthetic = root is not None and (root / "synthetic" / "masks").is_dir()
    return NotebookRun(run_dir=run_dir, model=model, config=config, cache=cache, rows=rows,
                       data_root=root, synthetic=synthetic, device=dev)


def export_table(table, out_dir: str | os.PathLike, name: str, caption: str | None = None) -> list[Path]:
    """Write a DataFrame as ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` in ``out_dir``
    (atomically); returns the paths. The LaTeX is a ``table`` with ``caption`` and ``tab:<name>``."""
    from analysis.tables import to_latex, to_markdown
    from tdrag.atomic import atomic_path, write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md, tex = (out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex"))
    with atomic_path(csv) as tmp:
        table.to_csv(tmp)
    write_text(md, to_markdown(table))
    write_text(tex, to_latex(table, caption=caption or name.replace("_", " ").capitalize(), label=f"tab:{name}"))
    return [csv, md, tex]


def class_index(name_or_index: str | int, class_names: Sequence[str] = DFEW_CLASSES) -> int:
    """"Happy" / "happy" / 0 -> 0; ValueError listing the names otherwise."""
    if isinstance(name_or_index, (int, np.integer)):
        if not 0 <= int(name_or_index) < len(class_names):
            raise ValueError(f"class index {name_or_index} out of range 0..{len(class_names) - 1}")
        return int(name_or_index)
    lowered = [n.lower() for n in class_names]
    if str(name_or_index).lower() not in lowered:
        raise ValueError(f"unknown class {name_or_index!r}; expected one of {', '.join(class_names)}")
    return lowered.index(str(name_or_index).lower())


# ---- running notebooks with parameters (papermill convention) ---------------------------------


def parameters_cell_index(nb) -> int:
    """Index of the cell tagged ``parameters``; ValueError when there is none."""
    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return i
    raise ValueError("the notebook has no cell tagged 'parameters'")


def parameter_names(nb) -> list[str]:
    """Names assigned at top level in the ``parameters`` cell, in order."""
    source = nb.cells[parameters_cell_index(nb)].source
    names = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names.extend(t.id for t in targets if isinstance(t, ast.Name))
    return names


def inject_parameters(nb, parameters: Mapping[str, Any]):
    """Insert a cell tagged ``injected-parameters`` after the ``parameters`` cell (in place).

    Values must be Python literals (their ``repr`` is written); an earlier injected cell is
    replaced. Returns ``nb``.
    """
    import nbformat

    for key, value in parameters.items():
        if not key.isidentifier():
            raise ValueError(f"parameter name {key!r} is not an identifier")
        try:
            ast.literal_eval(repr(value))
        except (ValueError, SyntaxError):
            raise ValueError(f"parameter {key}: {value!r} is not a Python literal (str, number, bool, list, ...)") from None
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    at = parameters_cell_index(nb)
    lines = ["# Parameters injected for this execution"] + [f"{k} = {v!r}" for k, v in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(at + 1, cell)
    return nb


def execute_notebook(
    path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: int = 600,
    output: str | os.PathLike | None = None,
    kernel_name: str = "python3",
):
    """Execute a notebook top to bottom with injected ``parameters``; return the executed notebook.

    Args:
        path: the .ipynb file (never modified).
        parameters: values injected after the ``parameters`` cell.
        cwd: the kernel's working directory (default: the notebook's folder, as in Jupyter).
        timeout: seconds allowed per cell.
        output: where to write the executed notebook (atomically), if anywhere.
    Raises:
        nbclient.exceptions.CellExecutionError naming the failing cell and its traceback.
    """
    import nbformat
    from nbclient import NotebookClient

    from tdrag.atomic import write_text

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(cwd or path.parent)}})
    try:
        client.execute()
    finally:
        if output is not None:
            write_text(output, nbformat.writes(nb))
    return nb
