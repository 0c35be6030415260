"""The ablation: every TDRAG part against a plain r3d18, trained with the same seeds, paired.

Each variant is a set of config overrides on one recipe (``configs/synthetic_medium.yaml`` by
default); its runs live in ``OUT/runs/<variant>[_<name>]/seed_<k>``. Seeds run outermost, so a
partial benchmark still holds paired results; a finished run is read, not trained again::

    for result in train_runs(Path("runs/ablation"), ["r3d18", "tdrag"], [0, 1, 2]):
        print(result.variant, result.seed, result.test_war, result.gru_off_test_war)

A run's figures (:func:`run_result`) are read from its report (the checkpoint chosen on the
validation split, and the last epoch's) and log; the GRU-off figures come from
:func:`analysis.experiments.evaluation.evaluate_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from analysis.experiments.data import CONFIG, ensure_cache, prepare_data
from analysis.experiments.results import RunResult
from tdrag.config import Config, apply_overrides, load_config, replace

#: variant -> the config overrides that make it from the recipe (validated by ``tdrag.config``).
VARIANTS: dict[str, tuple[str, ...]] = {
    "r3d18": ("model.name=r3d18", "data.keyframes=uniform"),
    "tdrag": ("model.name=tdrag", "data.keyframes=redundancy"),
    "tdrag_no_attention": ("model.name=tdrag_no_attention", "data.keyframes=redundancy"),
    "tdrag_no_gru": ("model.name=tdrag_no_gru", "data.keyframes=redundancy"),
    "tdrag_uniform": ("model.name=tdrag", "data.keyframes=uniform"),
    "r3d18_redundancy": ("model.name=r3d18", "data.keyframes=redundancy"),
    # TDRAG's backbone (temporal strides) with neither attention nor GRU: against r3d18_redundancy
    # it isolates the strides, against tdrag_no_gru the attention.
    "tdrag_trunk": ("model.name=tdrag_trunk", "data.keyframes=redundancy"),
}


def run_name(variant: str, name: str = "") -> str:
    """A run's variant name in the results: ``<variant>`` or ``<variant>_<name>`` (a design explored)."""
    return variant + (f"_{name}" if name else "")


def run_config(base: Config, variant: str, seed: int, paths: dict[str, Path], run_dir: Path,
               extra: Sequence[str] = (), epochs: int | None = None, workers: int = 1) -> Config:
    """The config of one run: the recipe, the variant's overrides, its folder and seed, then
    ``extra`` overrides (which may change the keyframe method or T: their cache is made on demand)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    config = apply_overrides(base, list(VARIANTS[variant]))
    config = replace(config, data={"root": str(paths["root"])}, train={"run_dir": str(run_dir), "seed": int(seed)})
    if epochs:
        config = replace(config, train={"epochs": int(epochs)})
    if extra:
        config = apply_overrides(config, list(extra))
    return replace(config, data={"cache": str(ensure_cache(paths, config, base, workers))})


def run_result(name: str, seed: int, run_dir: Path, seconds: float = 0.0) -> RunResult:
    """One finished run's figures: test and validation WAR/UAR of the selected and of the last
    epoch (its report), the first and last training loss (its log), and the GRU-off test WAR of
    both checkpoints with the share of the last one's predictions the GRU changes."""
    from analysis.experiments.evaluation import evaluate_checkpoint
    from tdrag.runs.epoch_log import read_log
    from tdrag.runs.layout import RunPaths

    paths = RunPaths(run_dir)
    metrics = paths.read_metrics()
    if metrics is None:
        raise FileNotFoundError(f"{paths.metrics}: no report; is the run at {run_dir} finished?")
    chosen, last = metrics["best"] or metrics["last"], metrics["last"]
    log = read_log(paths.log)
    selected = evaluate_checkpoint(run_dir, "auto")
    final = evaluate_checkpoint(run_dir, "last")
    return RunResult(
        variant=name, seed=int(seed), run_dir=str(run_dir),
        test_war=chosen["test"]["war"], test_uar=chosen["test"]["uar"],
        selected_epoch=chosen["epoch"], selection=metrics["selection"]["split"],
        val_war=(chosen.get("val") or {}).get("war"),
        last_test_war=last["test"]["war"], last_test_uar=last["test"]["uar"],
        last_val_war=(last.get("val") or {}).get("war"),
        first_train_loss=log[0]["train_loss"], last_train_loss=log[-1]["train_loss"],
        last_train_acc=log[-1]["train_acc"], seconds=seconds,
        gru_off_test_war=selected.gru_off_war, last_gru_off_test_war=final.gru_off_war,
        last_gru_changed=final.gru_changed,
    )


def train_runs(out: Path, variants: Sequence[str], seeds: Sequence[int], name: str = "", extra: Sequence[str] = (),
               clips: int | None = None, epochs: int | None = None, workers: int = 1,
               config_path: str | Path = CONFIG) -> Iterator[RunResult]:
    """Train (or reuse) every variant with every seed under ``out``; yield each run's result as it
    finishes, seeds outermost (a partial benchmark still holds paired results).

    Args:
        out: the benchmark folder (``data/``, ``cache_*``, ``runs/``).
        name: suffix of the runs' names, for a design explored with ``extra``.
        extra: config overrides for every run (``section.field=value``).
        clips, epochs: the recipe's, unless given.
        config_path: the recipe (and its synthetic preset).
    """
    from tdrag.runs.layout import RunPaths
    from tdrag.train.fit import fit

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    base = load_config(config_path)
    paths = prepare_data(out, base, clips, workers)
    for seed in seeds:
        for variant in variants:
            label = run_name(variant, name)
            run_dir = out / "runs" / label / f"seed_{seed}"
            config = run_config(base, variant, seed, paths, run_dir, extra, epochs, workers)
            started = time.perf_counter()
            if not RunPaths(run_dir).finished(config.train.epochs):
                fit(config, resume=True, overwrite=False, progress=False)
            yield run_result(label, seed, run_dir, round(time.perf_counter() - started, 1))


def score_attention(results: Sequence[RunResult]) -> list[RunResult]:
    """The results with each run's attention agreement (``attention_agreement``; None for a model
    without attention)."""
    from analysis.experiments.attention import attention_agreement

    return [dataclasses.replace(r, attention=attention_agreement(r.run_dir)) for r in results]
