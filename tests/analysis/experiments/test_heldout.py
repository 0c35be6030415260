"""analysis.experiments.heldout: the draw's recipe comes from the runs; which runs are scored."""

from __future__ import annotations

import pytest

from analysis.experiments import heldout
from analysis.experiments.data import CONFIG
from analysis.experiments.heldout import heldout_recipe, select_runs
from tests.analysis.experiments.test_results import run


def test_the_draw_has_the_runs_preset_not_the_default_recipes(tiny_run):
    from tdrag.config import load_config
    from tdrag.models.registry import load_model

    trained = load_model(tiny_run)[1].synth
    base = heldout_recipe([run(run_dir=str(tiny_run))])
    assert load_config(CONFIG).synth.preset == "medium" and trained.preset == "easy"
    assert (base.synth.preset, base.synth.render_size, base.synth.render_seed) == (
        trained.preset, trained.render_size, trained.render_seed)
    assert base.data == load_config(CONFIG).data  # the recipe's T and size still name the caches


def test_runs_of_two_presets_are_refused(monkeypatch):
    from tdrag.config import Config, replace

    presets = {"a": "medium", "b": "order"}
    monkeypatch.setattr(heldout, "run_config_of", lambda r: replace(Config(), synth={"preset": presets[r.run_dir]}))
    with pytest.raises(ValueError, match="different synthetic sets"):
        heldout_recipe([run(run_dir="a"), run(run_dir="b")])


def test_select_runs():
    runs = [run(variant="r3d18", seed=0), run(seed=0), run(seed=1)]
    assert select_runs(runs) == runs
    assert select_runs(runs, variants=["tdrag"], seeds=[1]) == [runs[2]]
    assert select_runs(runs, seeds=[5]) == []
    with pytest.raises(ValueError, match="tdrag seed 1 is listed twice"):
        select_runs([*runs, run(seed=1, run_dir="another")])
