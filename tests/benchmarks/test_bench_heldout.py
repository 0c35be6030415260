"""benchmarks/bench_heldout.py at toy size: an ablation's runs evaluated on an independent draw."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    sys.path.insert(0, str(BENCH))  # bench_heldout imports bench_ablation by name
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


def test_runs_are_scored_on_every_clip_of_a_new_draw(ablation, tmp_path):
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
    bench.heldout_result = lambda *a, **k: pytest.fail("a scored run was evaluated again")
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


def test_class_table_by_hand():
    names = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
    counts = np.eye(7, dtype=int) * 10
    counts[6, 6], counts[6, 4] = 5, 5  # half of Fear taken for Surprise, its shared-apex twin
    counts[1, 1], counts[1, 0] = 8, 2  # Sad taken for Happy: not a timing confusion
    row = _load("bench_heldout").class_table([{"variant": "m", "last_test_confusion": counts.tolist()}],
                                             names).splitlines()[2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # Recall per class, then 5 of the 40 clips of Angry, Surprise, Disgust and Fear.
    assert cells == ["m", *(f"{v:.1f} ± 0.0" for v in (100, 80, 100, 100, 100, 100, 50, 12.5))]
