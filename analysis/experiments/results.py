"""Typed results of the ablation and the held-out draw, and their JSON files.

A results file (``results.json``, ``results_<name>.json``) is ``{"results": [run, ...], "table":
{...}}``: one entry per trained run (a :class:`RunResult` of ``benchmarks/bench_ablation.py``, a
:class:`HeldoutResult` of ``benchmarks/bench_heldout.py``) and the paired summary
(:mod:`analysis.experiments.summary`). An entry's keys are its dataclass's field names; a figure a
run does not have (no GRU branch, no attention, no validation split) is left out of the entry, and
reads back as None. Files written before these classes existed hold the same keys and read alike::

    runs = read_results("runs/ablation/results.json", RunResult)
    runs[0].test_war, runs[0].attention["layer3"].auroc
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from tdrag.errors import TdragError


class ResultsError(TdragError, ValueError):
    """A results file that is not one of these benchmarks' (the message names the file and key)."""


@dataclass(frozen=True)
class StageAgreement:
    """One attention stage's agreement with the synthetic ground truth, averaged over a run's clips.

    Attributes:
        mass: mean share of the map's mass inside the signal masks.
        auroc: mean AUROC of the map as a detector of the signal pixels (0.5 = chance).
        auroc_face: the same among the face's pixels only (NaN without region maps).
        pointing_game: share of frames whose maximum lies inside the mask.
        chance: mean area fraction of the masks (the mass a uniform map gets).
    """

    mass: float
    auroc: float
    auroc_face: float
    pointing_game: float
    chance: float

    @property
    def ratio(self) -> float:
        """mass / chance: > 1 means the map concentrates on the ground truth."""
        return self.mass / self.chance

    def to_json(self) -> dict[str, float]:
        return {**dataclasses.asdict(self), "ratio": self.ratio}


@dataclass(kw_only=True)
class RunFigures:
    """The figures of one trained run that the paired summary reads (fractions in [0, 1]).

    ``test_*`` is the checkpoint chosen on the validation split, ``last_*`` the last epoch's;
    ``gru_off_*`` the same with the GRU branch switched off and ``last_gru_changed`` the share of
    the last checkpoint's test predictions that switching changes (None without a GRU branch).
    """

    variant: str
    seed: int
    run_dir: str
    test_war: float
    test_uar: float
    last_test_war: float
    last_test_uar: float
    val_war: float | None = None
    last_val_war: float | None = None
    first_train_loss: float | None = None
    last_train_loss: float | None = None
    gru_off_test_war: float | None = None
    last_gru_off_test_war: float | None = None
    last_gru_changed: float | None = None

    def figure(self, key: str) -> float | None:
        """One figure by name (None when the run does not have it)."""
        return getattr(self, key)

    def to_json(self) -> dict[str, Any]:
        """The entry of a results file: every field that is not None."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):  # attention: stage -> StageAgreement
                value = {stage: entry.to_json() for stage, entry in value.items()}
            if value is not None:
                out[f.name] = value
        return out


@dataclass(kw_only=True)
class RunResult(RunFigures):
    """One ablation run (``benchmarks/bench_ablation.py``): the figures of its own test fold.

    Attributes (besides :class:`RunFigures`'):
        selected_epoch: the epoch of the checkpoint chosen on ``selection``.
        selection: the split that chose it ("val"; "test" only for runs without a validation split).
        last_train_acc: training accuracy of the last epoch.
        seconds: wall time of this call for the run (0 when reused).
        attention: stage -> agreement with the ground truth (``centre_prior``: the reference map);
            None when not scored or the model has no attention.
    """

    selected_epoch: int
    selection: str
    last_train_acc: float | None = None
    seconds: float = 0.0
    attention: dict[str, StageAgreement] | None = None


@dataclass(kw_only=True)
class HeldoutResult(RunFigures):
    """One ablation run scored on a held-out draw (``benchmarks/bench_heldout.py``): ``test`` means
    the draw; validation figures and training losses are carried over from the ablation.

    Attributes (besides :class:`RunFigures`'):
        clips: clips in the draw.
        render_seed: its render seed.
        test_confusion, last_test_confusion: ``(C, C)`` counts, true class by row.
        gru_off_test_confusion, last_gru_off_test_confusion: the same with the GRU branch off.
    """

    clips: int
    render_seed: int | None = None
    test_confusion: list[list[int]]
    last_test_confusion: list[list[int]]
    gru_off_test_confusion: list[list[int]] | None = None
    last_gru_off_test_confusion: list[list[int]] | None = None

    @property
    def key(self) -> tuple[str, int, int | None]:
        """What identifies a scored run: its folder and the draw (so a finished one is reused)."""
        return self.run_dir, self.clips, self.render_seed


Result = TypeVar("Result", bound=RunFigures)


def result_from_json(entry: dict[str, Any], cls: type[Result], where: str = "results") -> Result:
    """A results file's entry as ``cls``; ResultsError naming ``where`` for a missing or unknown key."""
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(entry) - set(names))
    if unknown:
        raise ResultsError(f"{where}: unknown key(s) {unknown} for a {cls.__name__} (known: {', '.join(names)})")
    required = [n for n, f in names.items() if f.default is dataclasses.MISSING and n not in entry]
    if required:
        raise ResultsError(f"{where}: entry of {entry.get('run_dir', '?')} lacks {', '.join(required)}")
    values = dict(entry)
    if values.get("attention") is not None:
        try:
            values["attention"] = {stage: StageAgreement(**{k: v for k, v in scores.items() if k != "ratio"})
                                   for stage, scores in values["attention"].items()}
        except TypeError as exc:  # a stage without, or with other, scores
            raise ResultsError(f"{where}: attention of {entry.get('run_dir', '?')}: {exc}") from None
    return cls(**values)


def read_results(path: str | os.PathLike, cls: type[Result]) -> list[Result]:
    """The runs of a results file (``{"results": [...], ...}``), as ``cls``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ResultsError(f"{path}: expected an object with a 'results' list")
    return [result_from_json(entry, cls, f"{path}, entry {k}") for k, entry in enumerate(data["results"])]


def results_json(results: Sequence[RunFigures], table: dict[str, Any] | None = None) -> dict[str, Any]:
    """The content of a results file: the runs' entries, and the summary table when given."""
    out: dict[str, Any] = {"results": [r.to_json() for r in results]}
    if table is not None:
        out["table"] = table
    return out
