"""The paired summary of runs over seeds: mean ± std per variant, and paired differences.

Variants trained with the same seeds see the same clips, fold and initial RNG state, so two of
them are compared seed by seed: the difference of a figure is taken per seed the two share, then
summarised (mean ± std over those seeds). Its spread is the spread of the *gap*, usually much
smaller than the spread of either variant's own figure::

    table = paired_summary(read_results("runs/ablation/results.json", RunResult))
    table["tdrag"].figures["test_war"]                        # MeanStd(mean, std) over seeds
    table["tdrag"].difference("test_war", "r3d18")            # PairedDifference(mean, std, seeds)

Standard deviations are the sample's (ddof = 1), 0 for a single seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis.experiments.results import RunFigures

#: Per-run figures summarised as mean ± std over seeds.
FIGURES = ("test_war", "test_uar", "last_test_war", "last_test_uar", "val_war", "last_val_war", "first_train_loss",
           "last_train_loss", "gru_off_test_war", "last_gru_off_test_war", "last_gru_changed")
#: Figures also compared paired (per seed) against each reference.
PAIRED = ("test_war", "test_uar", "last_test_war", "last_test_uar", "val_war", "last_val_war")
#: The references of the ablation table: the plain baseline and full TDRAG.
REFERENCES = ("r3d18", "tdrag")


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of some values."""

    mean: float
    std: float

    @classmethod
    def of(cls, values: Iterable[float]) -> MeanStd:
        values = np.asarray(list(values), dtype=float)
        if values.size == 0:
            raise ValueError("MeanStd.of: no values")
        return cls(float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0)


@dataclass(frozen=True)
class PairedDifference:
    """A variant's figure minus a reference's, per shared seed, summarised over those ``seeds``."""

    mean: float
    std: float
    seeds: tuple[int, ...]


@dataclass
class VariantSummary:
    """One variant's row of the table.

    Attributes:
        seeds: its seeds, sorted.
        figures: figure -> mean ± std over the seeds (only figures every seed has).
        differences: ``(figure, reference)`` -> the paired difference against ``reference``.
        attention: stage -> score -> mean ± std over the seeds that were scored.
    """

    seeds: list[int]
    figures: dict[str, MeanStd] = field(default_factory=dict)
    differences: dict[tuple[str, str], PairedDifference] = field(default_factory=dict)
    attention: dict[str, dict[str, MeanStd]] = field(default_factory=dict)

    def figure(self, key: str) -> MeanStd | None:
        return self.figures.get(key)

    def difference(self, key: str, reference: str) -> PairedDifference | None:
        return self.differences.get((key, reference))

    def to_json(self) -> dict[str, Any]:
        """The results file's ``table`` entry: ``figure: [mean, std]``, ``<figure>_minus_<reference>:
        [mean, std, seeds]``, ``attention: {stage: {score: [mean, std]}}``."""
        out: dict[str, Any] = {"seeds": list(self.seeds)}
        out.update({key: [v.mean, v.std] for key, v in self.figures.items()})
        out.update({f"{key}_minus_{ref}": [d.mean, d.std, len(d.seeds)] for (key, ref), d in self.differences.items()})
        if self.attention:
            out["attention"] = {stage: {k: [v.mean, v.std] for k, v in scores.items()}
                                for stage, scores in self.attention.items()}
        return out


def _by_variant(results: Iterable[RunFigures]) -> dict[str, dict[int, RunFigures]]:
    """variant -> seed -> run, variants in the order they first appear."""
    by: dict[str, dict[int, RunFigures]] = {}
    for r in results:
        runs = by.setdefault(r.variant, {})
        if r.seed in runs:
            raise ValueError(f"two runs of {r.variant} with seed {r.seed} ({runs[r.seed].run_dir}, {r.run_dir})")
        runs[r.seed] = r
    return by


def _paired(runs: dict[int, RunFigures], others: dict[int, RunFigures], key: str) -> PairedDifference | None:
    common = [s for s in sorted(runs) if s in others and others[s].figure(key) is not None]
    if not common:
        return None
    diff = MeanStd.of(runs[s].figure(key) - others[s].figure(key) for s in common)
    return PairedDifference(diff.mean, diff.std, tuple(common))


def _attention(runs: Sequence[RunFigures]) -> dict[str, dict[str, MeanStd]]:
    scored = [r.attention for r in runs if getattr(r, "attention", None)]
    if not scored:
        return {}
    stages = {stage: [a[stage].to_json() for a in scored if stage in a] for stage in scored[0]}
    return {stage: {k: MeanStd.of(entry[k] for entry in entries) for k in entries[0]} for stage, entries in stages.items()}


def paired_summary(results: Iterable[RunFigures], references: Sequence[str] = REFERENCES,
                   figures: Sequence[str] = FIGURES, paired: Sequence[str] = PAIRED) -> dict[str, VariantSummary]:
    """The table: variant -> :class:`VariantSummary`, variants in the order they first appear.

    Args:
        results: runs (``RunResult``, ``HeldoutResult``), at most one per variant and seed.
        references: the variants every other one is compared with, seed by seed (those present).
        figures: the figures summarised (a figure some seed lacks is left out of the row).
        paired: the figures whose paired differences are taken.
    """
    by = _by_variant(results)
    table = {}
    for name, runs in by.items():
        row = VariantSummary(seeds=sorted(runs))
        for key in figures:
            values = [runs[s].figure(key) for s in row.seeds]
            if all(v is not None for v in values):
                row.figures[key] = MeanStd.of(values)
        for key in (k for k in paired if k in row.figures):
            for reference in references:
                if reference in by and reference != name:
                    difference = _paired(runs, by[reference], key)
                    if difference is not None:
                        row.differences[(key, reference)] = difference
        row.attention = _attention([runs[s] for s in row.seeds])
        table[name] = row
    return table


def table_json(table: dict[str, VariantSummary]) -> dict[str, Any]:
    """The ``table`` of a results file."""
    return {name: row.to_json() for name, row in table.items()}
