"""Checkpoints as plain dicts, written atomically and read with ``torch.load(weights_only=True)``.

A checkpoint holds only tensors, primitives and containers of them, so the safe loader accepts it
and refuses anything else (a pickle carrying code or foreign classes)::

    {
      "format": "tdrag-checkpoint", "version": 1,
      "config": config_to_dict(config),          # nested dict of primitives, with its format's "version"
      "model": state_dict,                        # of the bare model (no DDP / compile wrapper)
      "class_names": [...],                       # the cache's classes, in label order
      "workdir": "/abs/folder",                   # where training ran: anchors the config's relative paths
      "cache_fingerprint": "...",                 # of the cache trained on (a resume checks it)
      "optimizer": state_dict, "scheduler": state_dict,
      "epoch": int,                               # epochs completed
      "best": {"epoch", "metric", "value"},       # best so far by the selection metric
      "history": [log.csv rows as dicts],
      "rng": rng_state(), "rng_per_rank": [...],  # python / numpy / torch / CUDA RNGs as tensors
    }

Only ``format``, ``version``, ``config`` and ``model`` are required: ``best.pt`` and exported
weights may omit the training state.

Which checkpoint of a run an analysis uses is :func:`select_checkpoint`'s choice; the config a
checkpoint carries is read back by :func:`checkpoint_config` with its data paths made findable
from here (``tdrag.runs.layout.RunPaths.locate``), and its classes by :func:`checkpoint_class_names`.
"""

from __future__ import annotations

import logging
import os
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tdrag.atomic import atomic_path
from tdrag.config import Config, ConfigError, config_from_dict, replace
from tdrag.config_versions import upgrade
from tdrag.data.datasets import get_reader
from tdrag.errors import TdragError
from tdrag.runs.layout import RunPaths

log = logging.getLogger(__name__)

FORMAT = "tdrag-checkpoint"
VERSION = 1
REQUIRED_KEYS = ("format", "version", "config", "model")


class CheckpointError(TdragError, RuntimeError):
    """A checkpoint file is missing, corrupt, foreign (not written by tdrag) or incompatible."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):  # torch.compile's OptimizedModule
            model = model._orig_mod
        elif isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        else:
            return model


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (with ``format``/``version`` filled in) to ``path`` atomically."""
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, **state}
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: refusing to write a checkpoint without {missing}")
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a tdrag checkpoint safely (``weights_only=True``).

    Raises:
        CheckpointError: naming ``path``, when the file is missing, truncated or corrupt, holds
            objects the safe loader refuses (a foreign pickle), or is not a tdrag checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses globals it does not know: code or classes from someone else's pickle.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: refused: not a plain tdrag checkpoint (the safe loader rejects its contents: {first_line})"
        ) from None
    except Exception as exc:  # noqa: BLE001 - garbage bytes surface as IndexError, TypeError, ...
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a tdrag checkpoint (no 'format': '{FORMAT}' entry)")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: incomplete tdrag checkpoint, missing {missing}")
    if state["version"] > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {state['version']} is newer than this tdrag ({VERSION})")
    return state


def run_dir_of(path: str | os.PathLike) -> Path:
    """The run directory a checkpoint file sits in (``RUN/checkpoints/x.pt`` -> ``RUN``)."""
    path = Path(path)
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def stored_config(state: dict[str, Any], path: str | os.PathLike = "checkpoint") -> Config:
    """The Config a loaded checkpoint stored, in the current format, as it was written (its paths
    not moved): a config of an older format is mapped by :func:`tdrag.config_versions.upgrade`,
    which knows what a field it lacks meant when it was written."""
    try:
        return config_from_dict(upgrade(state["config"], saved=True), source=f"{path} (config)")
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{path}: stored config is not valid for this tdrag: {exc}") from None


def checkpoint_config(state: dict[str, Any], path: str | os.PathLike = "checkpoint") -> Config:
    """The Config stored in a loaded checkpoint (:func:`stored_config`), its ``data.root`` and
    ``data.cache`` made findable from the current folder (:meth:`tdrag.runs.layout.RunPaths.locate`,
    anchored at the checkpoint's ``workdir``): the one path rule every reader of a saved run goes
    through."""
    config = stored_config(state, path)
    paths = RunPaths(run_dir_of(path))
    workdir, trained = state.get("workdir"), config.train.run_dir
    return replace(config, data={"root": paths.locate(config.data.root, workdir, trained),
                                 "cache": paths.locate(config.data.cache, workdir, trained)})


def checkpoint_class_names(state: dict[str, Any], path: str | os.PathLike = "checkpoint") -> tuple[str, ...]:
    """The class names a checkpoint's model predicts, in label order, as training stored them
    (the cache's); for checkpoints written before they were stored, :func:`dataset_class_names`."""
    names = state.get("class_names")
    if names:
        return tuple(str(n) for n in names)
    return dataset_class_names(checkpoint_config(state, path), str(path))


def dataset_class_names(config: Config, where: str) -> tuple[str, ...]:
    """The classes of the dataset ``config`` names (``data.dataset``), the list a cache of it
    holds; CheckpointError naming ``where`` when their number is not the model's."""
    classes = tuple(get_reader(config.data.dataset).CLASSES)
    if len(classes) != config.model.num_classes:
        raise CheckpointError(f"{where}: the model has {config.model.num_classes} classes, data.dataset "
                              f"{config.data.dataset!r} has {len(classes)}; no class names to give them")
    return classes


@dataclass(frozen=True)
class CheckpointChoice:
    """Which checkpoint of a run an analysis uses, and why (``reason`` is shown to the user).

    ``name``: "best" or "last" (or the file's name for a file given directly); ``epoch``: its
    epoch; ``selection``: "val" (chosen on held-out training clips), "test" (chosen on the test
    fold: optimistic), "last" (no choice made) or "file" (given directly).
    """

    path: Path
    name: str
    epoch: int | None
    selection: str
    reason: str


def select_checkpoint(path_or_run_dir: str | os.PathLike, which: str = "auto") -> CheckpointChoice:
    """The checkpoint an analysis of a run should use.

    Args:
        path_or_run_dir: a ``.pt`` file (used as given) or a run directory.
        which: "auto" (default): ``best.pt`` when its epoch was chosen on a validation split held
            out from the training fold, otherwise ``last.pt``: a checkpoint chosen on the test
            fold (``data.val_fraction = 0``) is optimistic, and analysis never defaults to it.
            "best" or "last" ask for one explicitly.

    Raises:
        CheckpointError: no such checkpoint.
    """
    path = Path(path_or_run_dir)
    if not path.is_dir():
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file or run directory")
        return CheckpointChoice(path, path.stem, None, "file", f"{path} (given)")
    if which not in ("auto", "best", "last"):
        raise CheckpointError(f"checkpoint {which!r}: choose auto, best or last")
    best, last = RunPaths(path).best, RunPaths(path).last
    if not best.is_file() and not last.is_file():
        raise CheckpointError(f"{path}: run dir has no checkpoints/best.pt or checkpoints/last.pt "
                              "(train one with `tdrag train`)")
    best_state = load_checkpoint(best) if best.is_file() else {}
    best_info, best_epoch = best_state.get("best") or {}, best_state.get("epoch")
    chosen_on = "val" if str(best_info.get("metric", "")).startswith("val") else "test"
    if which == "best" or (which == "auto" and best.is_file() and chosen_on == "val"):
        if not best.is_file():
            raise CheckpointError(f"{path}: no checkpoints/best.pt")
        note = ("chosen by WAR on a validation split held out from the training fold" if chosen_on == "val" else
                "chosen by WAR on the test fold itself: optimistic")
        return CheckpointChoice(best, "best", best_epoch, chosen_on, f"checkpoints/best.pt (epoch {best_epoch}, {note})")
    if last.is_file():
        epoch = load_checkpoint(last).get("epoch")
        why = "the last epoch"
        if which == "auto" and best.is_file():
            why += "; best.pt was chosen on the test fold, so analyses do not default to it"
        return CheckpointChoice(last, "last", epoch, "last", f"checkpoints/last.pt (epoch {epoch}, {why})")
    if which == "last":
        raise CheckpointError(f"{path}: no checkpoints/last.pt")
    return CheckpointChoice(best, "best", best_epoch, chosen_on,
                            f"checkpoints/best.pt (epoch {best_epoch}; the only checkpoint left; chosen on the "
                            f"{'test fold: optimistic' if chosen_on == 'test' else 'validation split'})")


def resolve_checkpoint(path_or_run_dir: str | os.PathLike) -> Path:
    """A checkpoint file as given, or the one :func:`select_checkpoint` picks in a run dir."""
    return select_checkpoint(path_or_run_dir).path


def load_weights(model: nn.Module, state: dict[str, Any], path: str | os.PathLike, name: str) -> None:
    """``model.load_state_dict(state["model"])``, or one CheckpointError naming ``path`` and the
    model ``name`` when the weights do not fit (another architecture or width)."""
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: weights do not fit model '{name}' built from its config ({detail})") from None


# --- random number generators -------------------------------------------------------------------


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Python, numpy, torch (CPU and every CUDA device) RNG states as tensors and primitives.

    ``generators`` adds named ``torch.Generator`` states (e.g. the batch augmentation's).
    """
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python_version": int(py_version),
        "python_internal": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": py_gauss,
        "numpy_name": str(np_name),
        "numpy_keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator] | None = None) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only when the device count matches)."""
    random.setstate((state["python_version"], tuple(int(v) for v in state["python_internal"].tolist()), state["python_gauss"]))
    np.random.set_state(
        (
            state["numpy_name"],
            state["numpy_keys"].numpy().astype(np.uint32),
            state["numpy_pos"],
            state["numpy_has_gauss"],
            state["numpy_gauss"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        else:
            log.warning("checkpoint has %d CUDA RNG states, this machine %d devices: CUDA RNGs not restored",
                        len(cuda_states), torch.cuda.device_count())
    for name, generator in (generators or {}).items():
        if name in state.get("generators", {}):
            generator.set_state(state["generators"][name].cpu())
