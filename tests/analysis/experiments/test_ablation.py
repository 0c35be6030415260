"""analysis.experiments.ablation: the variants mean what their names say; a run's figures are its report's."""

from __future__ import annotations

import pytest
import torch

from analysis.experiments.ablation import VARIANTS, run_name, run_result
from analysis.experiments.data import CONFIG
from analysis.experiments.evaluation import evaluate_checkpoint, has_gru_branch

#: variant -> (keyframe method, has attention, has a GRU branch to switch off)
PROMISED = {
    "r3d18": ("uniform", False, False),
    "tdrag": ("redundancy", True, True),
    "tdrag_no_attention": ("redundancy", False, True),
    "tdrag_no_gru": ("redundancy", True, False),
    "tdrag_uniform": ("uniform", True, True),
    "r3d18_redundancy": ("redundancy", False, False),
    "tdrag_trunk": ("redundancy", False, False),
}


@pytest.mark.parametrize("recipe", [CONFIG, CONFIG.parent / "synthetic_order.yaml"], ids=["medium", "order"])
def test_every_variant_builds_the_model_its_name_promises(recipe):
    from tdrag.config import apply_overrides, load_config
    from tdrag.models.registry import build_model_from_config

    assert set(VARIANTS) == set(PROMISED)
    base = load_config(recipe)
    x = torch.zeros(1, 3, base.data.frames, base.data.crop, base.data.crop)
    for variant, (keyframes, attention, gru) in PROMISED.items():
        config = apply_overrides(base, list(VARIANTS[variant]))
        model = build_model_from_config(config.model).eval()
        with torch.no_grad():
            seen = model.inspect(x)
        assert config.data.keyframes == keyframes, variant
        assert bool(seen.attention) == attention, variant
        assert has_gru_branch(model) == gru, variant


def test_run_names():
    assert run_name("tdrag") == "tdrag" and run_name("tdrag", "softmax") == "tdrag_softmax"


def test_a_runs_figures_are_its_report_log_and_checkpoints(tiny_run):
    from tdrag.runs.epoch_log import read_log
    from tdrag.runs.layout import RunPaths

    paths = RunPaths(tiny_run)
    metrics, log = paths.read_metrics(), read_log(paths.log)
    r = run_result("tdrag_x", 3, tiny_run, seconds=1.5)
    chosen = metrics["best"] or metrics["last"]
    assert (r.variant, r.seed, r.run_dir, r.seconds) == ("tdrag_x", 3, str(tiny_run), 1.5)
    assert (r.test_war, r.test_uar, r.selected_epoch) == (chosen["test"]["war"], chosen["test"]["uar"], chosen["epoch"])
    assert (r.last_test_war, r.last_test_uar) == (metrics["last"]["test"]["war"], metrics["last"]["test"]["uar"])
    assert r.selection == metrics["selection"]["split"] == "test"  # the fixture holds no validation clips out
    assert r.val_war is None and r.last_val_war is None
    assert (r.first_train_loss, r.last_train_loss) == (log[0]["train_loss"], log[-1]["train_loss"])
    last = evaluate_checkpoint(tiny_run, "last")
    assert r.last_gru_off_test_war == last.gru_off_war and r.last_gru_changed == last.gru_changed
    # "auto" is last.pt for a run that chose its best epoch on the test fold (never analysed as such).
    assert r.gru_off_test_war == evaluate_checkpoint(tiny_run, "auto").gru_off_war
