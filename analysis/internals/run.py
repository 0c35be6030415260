"""The opened run: one object holding a trained run's model, config, cache, split, class names,
checkpoint choice, ground truth, and ONE cached ``model.inspect`` pass over the split.

It plays the role of TransformerLens' ``run_with_cache``: the pass is made once, the first time a
view asks for it, through the loop evaluation and prediction use too
(``tdrag.models.forward.forward_clips``), and every analysis (attention, trajectories,
attributions, the explorer, the dossier) reads from it. The run's clips are the rows training used
(``tdrag.train.data.load_run_data``: test, validation or training split, the cache checked)::

    run = open_run("runs/demo/run")                # the checkpoint select_checkpoint picks ("auto")
    print(run.describe())                          # model, split, clips, which checkpoint and why
    run.inspection.attention["layer3"].shape       # (N, 1, T', H', W'), computed once, kept
    run.probabilities[:4]                          # (4, C) from the same pass
    run.attention_maps([0, 1])["layer3"].shape     # (2, T, crop, crop), tdrag.models.inspection.upsample_attention
    run.frames([0]).shape                          # (1, T, crop, crop, 3) uint8, straight from the cache
    x = run.inputs([0, 1])                         # (2, 3, T, crop, crop) normalised, as inspected

Clips are addressed by their **position** ``i`` in the split (``0 .. len(run) - 1``, the row order
of ``run.inspection``); ``run.rows[i]`` is the cache row.

Attributions are kept too: ``analysis.attribution.attribute.attribute_clips`` makes each clip's map
of a method, options and target class once and keeps it in ``run.attributions`` (one
:class:`~analysis.internals.map_store.MapStore` per method and options). Both caches can be saved
and loaded by another process showing the same run (``analysis.internals.saved_run``: the dossier
saves them once, each class page opens the run with ``saved=``)::

    save_run(run, "passes")                         # analysis.internals.saved_run
    page = open_run("runs/demo/run", saved="passes")   # no inspection pass, the maps reused

Memory stays bounded: attention maps are kept at their stage resolution ``(T', H', W')`` and
upsampled to frame size only for the clips being looked at; hidden states and step logits are small.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import nn

from analysis.internals.map_store import MapStore
from tdrag.models.forward import forward_clips
from tdrag.models.inspection import ModelInspection

log = logging.getLogger(__name__)

#: The splits of a run's fold that can be opened: what it trained on, what chose its best epoch
#: (when ``data.val_fraction`` held some out), what it is tested on.
SPLITS = ("train", "val", "test", "all")


@dataclass
class SplitInspection(ModelInspection):
    """``model.inspect`` over a split (a ModelInspection of all its clips, on the CPU, in row
    order) with the clips it covers.

    Attributes (besides ModelInspection's logits, attention, hidden_states, step_logits):
        video_ids: N clip ids.
        rows: (N,) cache row of each clip (to look up frames or ground-truth masks again).
        labels: (N,) int64 true class.
    """

    video_ids: list[str] = field(default_factory=list)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def predictions(self) -> np.ndarray:
        """(N,) int64 predicted class."""
        return self.logits.argmax(dim=1).numpy()

    def __len__(self) -> int:
        return len(self.video_ids)


def inspect_split(
    model: nn.Module,
    cache,
    rows: Sequence[int] | np.ndarray,
    *,
    crop: int = 112,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    keep_attention: bool = True,
    amp: bool = False,
    progress: bool = True,
) -> SplitInspection:
    """Run ``model.inspect`` over cache ``rows`` with the evaluation transform (centre crop), through
    the one loop evaluation and prediction use (``tdrag.models.forward.forward_clips``).

    Args:
        model: a tdrag model (any variant; attention / GRU outputs are kept when it has them).
        cache: a ``tdrag.data.cache.ClipCache`` (``open_cache``).
        rows: cache rows to inspect, e.g. ``cache.rows(fold, "test")``.
        crop: input side, the run's ``data.crop``.
    """
    from tdrag.data.loader import make_loader

    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise ValueError("inspect_split: no rows given (is the split empty?)")
    loader = make_loader(cache, rows, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    seen, (labels, seen_rows) = forward_clips(model, loader, crop=crop, device=device, amp=amp, inspect=True,
                                              keep_attention=keep_attention, progress=progress, desc="inspect",
                                              total=len(loader))
    seen_rows = seen_rows.astype(np.int64)
    return SplitInspection(**vars(seen), video_ids=[str(cache.video_ids[r]) for r in seen_rows], rows=seen_rows,
                           labels=labels.astype(np.int64))


class RunNotFound(FileNotFoundError):
    """A run directory that does not exist or holds no checkpoint (the message says how to make one)."""


def _how_to_make(run_dir: Path) -> str:
    return (f"{run_dir}: no trained run there. Make one with `tdrag train CONFIG`, `make demo` (the demo run "
            "is runs/demo/run), notebooks/01_train.ipynb, or set DEMO = True in the notebook's parameters cell "
            "(it calls tdrag.train.demo.ensure_demo); or point RUN_DIR at an existing run")


def _limit_per_class(positions: np.ndarray, labels: np.ndarray, max_clips: int | None) -> np.ndarray:
    """The first ``max_clips`` entries of each class (all when None), in their original order."""
    if max_clips is None:
        return positions
    keep = np.zeros(len(positions), dtype=bool)
    for c in np.unique(labels):
        keep[np.flatnonzero(labels == c)[: int(max_clips)]] = True
    return positions[keep]


def as_positions(positions, n: int) -> np.ndarray:
    """``positions`` as an int64 array in ``0 .. n - 1`` (negative ones counted from the end; IndexError
    out of range)."""
    out = np.asarray(positions, dtype=np.int64).reshape(-1)
    if out.size and (out.min() < -n or out.max() >= n):
        raise IndexError(f"clip positions {out.tolist()} out of range for a split of {n} clips")
    return out % max(n, 1)


@dataclass
class Run:
    """A trained run opened for analysis (see the module docstring); made by :func:`open_run`.

    Attributes:
        run_dir: the run directory.
        model: the model in eval mode, on ``device``.
        config: the run's ``tdrag.config.Config``.
        checkpoint: the ``tdrag.runs.checkpoints.CheckpointChoice`` loaded (``.reason`` says why).
        cache: the ``ClipCache`` holding the clips.
        split: "test", "val" or "train" of ``config.data.fold`` (``tdrag.train.data.load_run_data``'s rows).
        rows: ``(N,)`` cache rows analysed, in order (``max_clips`` per class at most).
        labels: ``(N,)`` int64 true classes.
        video_ids: N clip ids.
        class_names: the dataset's class names (from the cache; MAFW has 11).
        device: where the model runs.
        data_root: the dataset root, or None when it is not on this machine.
        synthetic: whether ``data_root`` holds synthetic ground-truth masks.
        batch_size, amp: how the inspection pass runs (bf16 autocast on CUDA only).
        attributions: the attribution maps made so far, by method and options ("method {options
            as JSON}" -> MapStore; ``analysis.attribution.attribute.attribute_clips`` fills and
            reads it). They are maps of ``model`` as opened: a run whose model is changed in place
            must clear them.
    """

    run_dir: Path
    model: nn.Module
    config: object
    checkpoint: object
    cache: object
    split: str
    rows: np.ndarray
    labels: np.ndarray
    video_ids: list[str]
    class_names: tuple[str, ...]
    device: torch.device
    data_root: Path | None = None
    synthetic: bool = False
    batch_size: int = 16
    amp: bool = False
    progress: bool = True
    attributions: dict[str, MapStore] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (f"Run({str(self.run_dir)!r}, model={self.config.model.name}, split={self.split}, clips={len(self)}, "
                f"checkpoint={self.checkpoint.name})")

    # ---- what the run is --------------------------------------------------------------------

    @property
    def crop(self) -> int:
        """Side of the model input (the run's ``data.crop``)."""
        return int(self.config.data.crop)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def step_loss(self) -> str:
        return str(getattr(self.config.train, "step_loss", "last"))

    def step_readout_meaning(self) -> str:
        """One sentence: what this model's GRU step readouts mean (``tdrag.models.inspection.step_readout_meaning``)."""
        from tdrag.models.inspection import step_readout_meaning

        return step_readout_meaning(self.model, self.step_loss)

    def describe(self):
        """Markdown (a :class:`~analysis.plotting.Note`, shown as such in a notebook): the run, the
        model, the split analysed, which checkpoint is shown and why, and what its step readouts mean."""
        from analysis.plotting import Note

        c = self.config
        return Note(f"**{self.run_dir}**: model `{c.model.name}` ({self.num_classes} classes of {self.cache.dataset}: "
                f"{', '.join(self.class_names)}), fold {c.data.fold} {self.split} split, {len(self)} clips of "
                f"{self.cache.num_frames} keyframes at {self.crop} px; synthetic ground truth: "
                f"{'yes' if self.synthetic else 'no'}.\n\n"
                f"**Checkpoint shown:** {self.checkpoint.reason}.\n\n"
                f"**GRU step readouts:** {self.step_readout_meaning()}")

    # ---- the one cached inspection pass --------------------------------------------------------

    @cached_property
    def inspection(self) -> SplitInspection:
        """``model.inspect`` over the whole split, made the first time it is asked for and kept."""
        return inspect_split(self.model, self.cache, self.rows, crop=self.crop, batch_size=self.batch_size,
                             device=self.device, amp=self.amp, progress=self.progress)

    def for_another_thread(self) -> Run:
        """A copy of the run for work in another thread: the same clips and cached pass, its own copy
        of the model (a pass there may switch its GRU off, and its attributions run it) and its own,
        empty map stores (the threads share nothing they write). The pass is made first when it was
        not: the copy never makes one of its own."""
        self.inspection  # noqa: B018 -- cached on self, so the copy holds it too
        worker = copy.copy(self)
        worker.model = copy.deepcopy(self.model)
        worker.attributions = {}
        return worker

    def use_inspection(self, inspection: SplitInspection) -> None:
        """Take ``inspection`` (of this run's clips, e.g. a saved one) as the cached pass instead of making it."""
        if not np.array_equal(np.asarray(inspection.rows), self.rows):
            raise ValueError(f"the inspection covers other clips than the run opened ({self.run_dir})")
        self.__dict__["inspection"] = inspection  # where cached_property keeps the value it made
        self.__dict__.pop("probabilities", None)  # made from the inspection

    @property
    def logits(self) -> torch.Tensor:
        """(N, C) float32."""
        return self.inspection.logits

    @cached_property
    def probabilities(self) -> torch.Tensor:
        """(N, C) softmax of the logits."""
        return self.inspection.logits.softmax(dim=1)

    @property
    def predictions(self) -> np.ndarray:
        """(N,) int64 argmax of the logits."""
        return self.inspection.predictions

    @property
    def attention(self) -> dict[str, torch.Tensor]:
        """stage -> (N, 1, T', H', W') at stage resolution; empty for a model without attention."""
        return self.inspection.attention

    @property
    def hidden_states(self) -> torch.Tensor | None:
        """(N, T_gru, hidden), or None without a GRU."""
        return self.inspection.hidden_states

    @property
    def step_logits(self) -> torch.Tensor | None:
        """(N, T_gru, C), or None without a GRU."""
        return self.inspection.step_logits

    @property
    def has_attention(self) -> bool:
        return bool(self.attention)

    @property
    def has_gru(self) -> bool:
        return self.hidden_states is not None

    # ---- clips --------------------------------------------------------------------------------

    def positions_of_class(self, label: int | str) -> np.ndarray:
        """Positions of the clips whose true class is ``label`` (a name or an index)."""
        from analysis.plotting import class_index

        return np.flatnonzero(self.labels == class_index(label, self.class_names))

    def frames(self, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(B, T, crop, crop, 3)`` uint8 display frames: the cache's frames, centre-cropped as the
        model sees them (``tdrag.data.augment.center_crop_box``), never de-normalised."""
        from tdrag.data.augment import center_crop_box

        rows = self.rows[as_positions(positions, len(self))]
        frames = np.asarray(self.cache.frames[rows])
        top, left = center_crop_box(frames.shape[2], self.crop)
        return np.ascontiguousarray(frames[:, :, top : top + self.crop, left : left + self.crop])

    def inputs(self, positions: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``(B, 3, T, crop, crop)`` float32 normalised model input on ``device``, exactly as inspected."""
        from tdrag.data.augment import eval_transform

        rows = self.rows[as_positions(positions, len(self))]
        clips = torch.from_numpy(np.array(self.cache.frames[rows]))  # a writable copy of the memmap rows
        return eval_transform(clips.to(self.device), crop=self.crop)

    def attention_maps(self, positions: Sequence[int] | np.ndarray,
                       stages: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """stage -> ``(B, T, crop, crop)`` attention of the clips at frame size, from the cached pass
        (``tdrag.models.inspection.upsample_attention``); empty for a model without attention."""
        from tdrag.models.inspection import upsample_attention

        idx = torch.as_tensor(as_positions(positions, len(self)))
        names = list(self.attention) if stages is None else list(stages)
        size = (self.cache.num_frames, self.crop, self.crop)
        return {name: upsample_attention(self.attention[name][idx], size) for name in names}

    def masks(self, positions: Sequence[int] | np.ndarray) -> torch.Tensor:
        """``(B, T, crop, crop)`` bool ground-truth masks aligned with :meth:`inputs` (synthetic data only)."""
        from analysis.internals.ground_truth import ground_truth_masks

        if not self.synthetic:
            raise ValueError(f"{self.data_root or 'the data root'}: no synthetic ground-truth masks for this run")
        return ground_truth_masks(self.cache, self.rows[as_positions(positions, len(self))], self.data_root, self.crop)

    def most_confident(self, label: int | str, correct: bool = True, count: int = 3) -> np.ndarray:
        """Positions of class ``label``'s clips: the most confident correct ones (``correct=True``,
        by the probability of the true class) or the most confusing wrong ones (by the probability
        of the wrong class predicted), at most ``count``."""
        from analysis.plotting import class_index

        c = class_index(label, self.class_names)
        positions = self.positions_of_class(c)
        preds = self.predictions[positions]
        keep = positions[(preds == c) if correct else (preds != c)]
        score = self.probabilities[keep, c] if correct else self.probabilities[keep].max(dim=1).values
        order = np.argsort(-score.numpy(), kind="stable")
        return keep[order[: int(count)]]


def open_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    device: str | torch.device = "auto",
    max_clips: int | None = None,
    checkpoint: str = "auto",
    data_root: str | os.PathLike | None = None,
    batch_size: int = 16,
    amp: bool = False,
    progress: bool = True,
    cache: str | os.PathLike | None = None,
    saved: str | os.PathLike | None = None,
) -> Run:
    """Open a trained run for analysis.

    Args:
        run_dir: a run directory (``checkpoints/``). A missing run is an error saying how to make
            one; nothing is trained here (notebooks ask for the demo with ``DEMO = True``).
        split: "test", "val" (the clips held out of training to choose best.pt, when the run
            held some out: ``data.val_fraction`` > 0), "train" (the clips it trained on) or "all"
            (every clip of the cache: for another data set, ``cache``).
        device: "auto" (CUDA when present), "cpu", "cuda", ... (``tdrag.runtime.resolve_device``).
        max_clips: at most this many clips per class (the first of each class); None = all.
        checkpoint: "auto" (``tdrag.runs.checkpoints.select_checkpoint``: best.pt only when chosen on
            a held-out validation split, otherwise last.pt), "best" or "last".
        data_root: the dataset root, for synthetic ground truth (default: the run's ``data.root``).
        batch_size, amp: of the inspection pass.
        cache: another frame cache to open the run on (a held-out draw of the same preset,
            built with the run's keyframe rule, T and size: checked as the run's own), instead of
            the run's ``data.cache``.
        saved: a folder where ``analysis.internals.saved_run.save_run`` saved this run's passes
            (same checkpoint, cache, split and clips): its inspection and attribution maps are
            loaded, not computed again.

    The run's data comes from ``tdrag.train.data.load_run_data``, as in training and ``tdrag
    eval``: the cache checked against the run's config, the same train / val / test rows; its
    paths are found from here by the checkpoint's path rule (``checkpoint_config``).

    Raises:
        RunNotFound: no such run, or a run without checkpoints.
        ConfigError: the cache does not fit the run (another T, crop, class count or fold), or
            ``split="val"`` for a run that held no validation clips out.
        ValueError: ``saved`` holds no saved run, or one of another checkpoint or clips.
    """
    from tdrag.config import ConfigError, replace
    from tdrag.data.synthetic import is_synthetic_root
    from tdrag.models.registry import load_model
    from tdrag.runs.checkpoints import CheckpointError, select_checkpoint
    from tdrag.runs.layout import RunPaths
    from tdrag.runtime import resolve_device
    from tdrag.train.data import load_run_data

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunNotFound(_how_to_make(run_dir))
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    try:
        choice = select_checkpoint(run_dir, checkpoint)
    except CheckpointError as err:
        if not RunPaths(run_dir).checkpoints.is_dir():
            raise RunNotFound(_how_to_make(run_dir)) from None
        raise err
    dev = resolve_device(device, key="device")
    model, config = load_model(choice.path, device=dev)
    if cache is not None:
        config = replace(config, data={"cache": str(cache)})
    data = load_run_data(config)
    rows = {"train": data.train_rows, "val": data.val_rows, "test": data.test_rows,
            "all": np.arange(len(data.cache))}[split]
    if rows is None:
        raise ConfigError(f"{run_dir}: no validation clips to open (the run trained with data.val_fraction = 0, "
                          "so its best epoch was chosen on the test fold); open split='test' or 'train'")
    cache = data.cache
    rows = np.asarray(rows, dtype=np.int64)
    labels = np.asarray(cache.labels, dtype=np.int64)[rows]
    keep = _limit_per_class(np.arange(len(rows)), labels, max_clips)
    rows, labels = rows[keep], labels[keep]
    root = Path(data_root) if data_root else (Path(config.data.root) if config.data.root else None)
    if root is not None and not root.is_dir():
        log.warning("data root %s not found: ground-truth masks unavailable", root)
        root = None
    synthetic = root is not None and is_synthetic_root(root)
    run = Run(run_dir=run_dir, model=model, config=config, checkpoint=choice, cache=cache, split=split, rows=rows,
              labels=labels, video_ids=[str(cache.video_ids[int(r)]) for r in rows],
              class_names=tuple(data.class_names), device=dev, data_root=root, synthetic=synthetic,
              batch_size=batch_size, amp=amp, progress=progress)
    if saved is not None:
        from analysis.internals.saved_run import read_saved

        fields, maps = read_saved(run, saved)
        run.use_inspection(SplitInspection(**fields))
        run.attributions.update(maps)
    return run
