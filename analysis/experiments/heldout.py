"""An ablation's trained runs on a larger, independent draw of the same synthetic preset.

The draw is rendered from the runs' own ``synth`` section (their preset, size and layout) with
another render seed, so it shares no clip with their training set; its caches follow each run's
keyframe rule and T (:func:`analysis.experiments.data.ensure_cache`). Every run is scored on all
of its clips, the checkpoint chosen on the validation split and the last one, GRU branch on and
off (:func:`analysis.experiments.evaluation.evaluate_checkpoint`); nothing is trained or chosen
here, and the validation figures and training losses are carried over from the ablation::

    runs = read_results("runs/ablation/results.json", RunResult)
    base = heldout_recipe(runs)
    paths = prepare_data(out, base, 2400, workers=2, methods=(), seed=1)
    for result in score_heldout(runs, paths, base, render_seed=1, clips=2400, results_path=out / "results.json"):
        ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from analysis.experiments.data import CONFIG, ensure_cache
from analysis.experiments.results import HeldoutResult, RunResult, read_results, results_json
from tdrag.config import Config, load_config, replace

#: Figures carried over from the ablation (measured on the runs' own validation split and training).
CARRIED = ("val_war", "last_val_war", "first_train_loss", "last_train_loss")


def run_config_of(run: RunResult) -> Config:
    """The config a run trained with, as its checkpoint holds it (``load_model``: an older config
    format is mapped to the current one there, once)."""
    from tdrag.models.registry import load_model

    return load_model(run.run_dir)[1]


def heldout_recipe(runs: Sequence[RunResult], config_path: str | os.PathLike = CONFIG) -> Config:
    """The recipe of the held-out draw: ``config_path``'s (its T and size name the caches) with the
    runs' own synthetic preset, render size and layout, which every run must share."""
    synths = {run.run_dir: run_config_of(run).synth for run in runs}
    kinds = {(s.preset, s.render_size, s.layout) for s in synths.values()}
    if len(kinds) != 1:
        raise ValueError(f"the runs come from different synthetic sets (preset, size, layout): {sorted(kinds)}")
    first = next(iter(synths.values()))
    return replace(load_config(config_path), synth={"preset": first.preset, "render_size": first.render_size,
                                                   "layout": first.layout, "render_seed": first.render_seed})


def heldout_result(run: RunResult, paths: dict[str, Path], base: Config, render_seed: int,
                   workers: int = 1) -> HeldoutResult:
    """One run's figures on the draw (``paths``: its root and caches by method and T)."""
    from analysis.experiments.evaluation import evaluate_checkpoint
    from tdrag.data.cache import open_cache

    config = run_config_of(run)
    if config.data.size != base.data.size:
        raise ValueError(f"{run.run_dir}: data.size {config.data.size}; the held-out caches hold {base.data.size} px")
    cache = ensure_cache(paths, config, base, workers)
    rows = np.arange(len(open_cache(cache)))
    selected = evaluate_checkpoint(run.run_dir, "auto", cache=cache, rows=rows)
    last = evaluate_checkpoint(run.run_dir, "last", cache=cache, rows=rows)
    return HeldoutResult(
        variant=run.variant, seed=run.seed, run_dir=run.run_dir, clips=len(rows), render_seed=render_seed,
        **{key: run.figure(key) for key in CARRIED},
        test_war=selected.war, test_uar=selected.uar, test_confusion=selected.confusion,
        gru_off_test_war=selected.gru_off_war, gru_off_test_confusion=selected.gru_off_confusion,
        last_test_war=last.war, last_test_uar=last.uar, last_test_confusion=last.confusion,
        last_gru_off_test_war=last.gru_off_war, last_gru_off_test_confusion=last.gru_off_confusion,
        last_gru_changed=last.gru_changed,
    )


def score_heldout(runs: Sequence[RunResult], paths: dict[str, Path], base: Config, render_seed: int, clips: int,
                  results_path: Path, workers: int = 1) -> Iterator[HeldoutResult]:
    """Score every run on the draw, yielding each result. Runs already scored on this draw (in
    ``results_path``, by run folder, clips and render seed) are reused, so a killed call continues
    where it stopped (a run trained again in the same folder needs another results file); the
    file is rewritten atomically after each run, keeping the runs scored before."""
    from tdrag.atomic import write_json

    done = {r.key: r for r in (read_results(results_path, HeldoutResult) if results_path.is_file() else [])}
    for run in runs:
        key = (run.run_dir, clips, render_seed)
        if key not in done:
            done[key] = heldout_result(run, paths, base, render_seed, workers)
        write_json(results_path, results_json(list(done.values())))
        yield done[key]


def select_runs(runs: Sequence[RunResult], variants: Sequence[str] | None = None,
                seeds: Sequence[int] | None = None) -> list[RunResult]:
    """The runs of the given variants and seeds (all when None); ValueError for one run listed twice."""
    keep = [r for r in runs if (variants is None or r.variant in variants) and (seeds is None or r.seed in seeds)]
    seen: dict[tuple[str, int], str] = {}
    for r in keep:
        if (r.variant, r.seed) in seen:
            raise ValueError(f"{r.variant} seed {r.seed} is listed twice ({seen[(r.variant, r.seed)]}, {r.run_dir})")
        seen[(r.variant, r.seed)] = r.run_dir
    return keep
