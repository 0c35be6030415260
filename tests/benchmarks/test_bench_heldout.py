"""benchmarks/bench_heldout.py at toy size: an ablation's runs evaluated on an independent draw."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("abl")
    assert _load("bench_ablation").main(["--out", str(out), "--clips", "21", "--epochs", "1", "--variants",
                                          "r3d18,tdrag", "--seeds", "0", "--workers", "1"]) == 0
    return out


def test_runs_are_scored_on_every_clip_of_a_new_draw(ablation, tmp_path, monkeypatch):
    from sklearn.metrics import accuracy_score

    from tdrag.data.augment import eval_transform
    from tdrag.data.cache import open_cache
    from tdrag.data.synthetic import load_meta
    from tdrag.models.registry import load_model

    md = tmp_path / "heldout.md"
    args = ["--ablation", str(ablation / "results.json"), "--out", str(tmp_path / "ho"), "--clips", "14",
            "--markdown", str(md), "--workers", "1"]
    bench = _load("bench_heldout")
    assert bench.main(args) == 0
    assert load_meta(tmp_path / "ho" / "data")["seed"] == 1 and load_meta(ablation / "data")["seed"] == 0
    results = {r["variant"]: r for r in json.loads((tmp_path / "ho" / "results.json").read_text())["results"]}
    ablated = {r["variant"]: r for r in json.loads((ablation / "results.json").read_text())["results"]}
    assert set(results) == {"r3d18", "tdrag"} and all(r["clips"] == 14 for r in results.values())
    # Validation figures are the ablation's, carried over, never measured on the new draw.
    assert results["tdrag"]["val_war"] == ablated["tdrag"]["val_war"]
    # The last checkpoint's held-out WAR against the model run by hand on the whole cache.
    for variant, method in (("r3d18", "uniform"), ("tdrag", "redundancy")):
        model, config = load_model(results[variant]["run_dir"], which="last")
        cache = open_cache(tmp_path / "ho" / f"cache_{method}")
        with torch.no_grad():
            logits = model(eval_transform(torch.from_numpy(np.array(cache.frames[:])), crop=config.data.crop))
        assert results[variant]["last_test_war"] == pytest.approx(accuracy_score(cache.labels, logits.argmax(1)))
    assert 0 <= results["tdrag"]["last_gru_changed"] <= 1 and "last_gru_changed" not in results["r3d18"]
    text = md.read_text()
    assert "held-out draw of 14 clips" in text and "| tdrag | 1 |" in text and "| tdrag, GRU off |" in text
    r = results["tdrag"]
    assert f"| tdrag | {100 * r['test_war']:.1f} / {100 * r['last_test_war']:.1f} |" in text  # the per-seed table
    # A second call reuses the scored runs and writes the same table.
    from analysis.experiments import heldout

    monkeypatch.setattr(heldout, "heldout_result", lambda *a, **k: pytest.fail("a scored run was evaluated again"))
    md.unlink()
    assert bench.main(args) == 0 and md.read_text() == text
    assert bench.main([*args, "--variants", "tdrag", "--seeds", "0"]) == 0 and "| r3d18 |" not in md.read_text()
    with pytest.raises(SystemExit):  # no run has seed 1
        bench.main([*args, "--seeds", "1"])


def test_the_ablation_sets_own_render_seed_is_refused(ablation, tmp_path):
    with pytest.raises(SystemExit):
        _load("bench_heldout").main(["--ablation", str(ablation / "results.json"), "--out", str(tmp_path / "ho"),
                                     "--render-seed", "0"])
    assert not (tmp_path / "ho").exists()


def test_an_old_ablation_file_is_read_and_its_runs_chosen():
    """A results file the ablation wrote before its runs were typed (runs/ablation_order's), read
    as `--ablation FILE --variants ... --seeds ...` reads it: nothing is evaluated."""
    from tests.analysis.experiments.test_results import OLD_ABLATION

    bench = _load("bench_heldout")
    parser = bench.build_parser()
    args = parser.parse_args(["--ablation", str(OLD_ABLATION), "--variants", "tdrag,r3d18", "--seeds", "0,2"])
    runs = bench.chosen_runs(parser, args)
    assert sorted((r.variant, r.seed) for r in runs) == [("r3d18", 0), ("r3d18", 2), ("tdrag", 0), ("tdrag", 2)]
    assert all(r.val_war is not None and r.first_train_loss is not None for r in runs)  # carried over
    twice = parser.parse_args(["--ablation", str(OLD_ABLATION), "--ablation", str(OLD_ABLATION)])
    with pytest.raises(SystemExit):  # a run listed twice is refused before anything is rendered
        bench.chosen_runs(parser, twice)
