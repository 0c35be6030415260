"""benchmarks/bench_ablation.py end to end at toy size: paired runs, the table, attention scores, the figure.

The experiment's parts are tested one by one in tests/analysis/experiments; here the command line.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_ablation.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_ablation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_toy_run_writes_results_table_and_figure(tmp_path):
    bench = _load()
    md, png = tmp_path / "table.md", tmp_path / "bars.png"
    assert bench.main(["--out", str(tmp_path / "abl"), "--clips", "21", "--epochs", "1", "--variants",
                       "r3d18,tdrag,tdrag_uniform", "--seeds", "0,1", "--score-attention", "--markdown", str(md),
                       "--figure", str(png), "--workers", "1"]) == 0
    data = json.loads((tmp_path / "abl" / "results.json").read_text())
    assert sorted((r["variant"], r["seed"]) for r in data["results"]) == sorted(
        (v, s) for v in ("r3d18", "tdrag", "tdrag_uniform") for s in (0, 1))
    assert all(r["selection"] == "val" for r in data["results"])  # never chosen on the test fold
    tdrag = next(r for r in data["results"] if r["variant"] == "tdrag")
    assert set(tdrag["attention"]) == {"layer2", "layer3", "layer4", "centre_prior"}
    assert 0 <= tdrag["attention"]["layer2"]["pointing_game"] <= 1 and tdrag["attention"]["layer2"]["ratio"] > 0
    assert 0 <= tdrag["attention"]["layer3"]["auroc"] <= 1 and 0 <= tdrag["attention"]["layer3"]["auroc_face"] <= 1
    # The centre prior is one fixed map: the same scores for every run on the same keyframes.
    assert all(r["attention"]["centre_prior"] == tdrag["attention"]["centre_prior"]
               for r in data["results"] if r["variant"] == "tdrag")
    assert not any(r.get("attention") for r in data["results"] if r["variant"] == "r3d18")
    # What the GRU branch changes: a share of the test predictions, read for the GRU heads only.
    assert 0 <= tdrag["last_gru_changed"] <= 1 and 0 <= tdrag["last_gru_off_test_war"] <= 1
    assert not any("last_gru_changed" in r for r in data["results"] if r["variant"] == "r3d18")
    text = md.read_text()
    assert "| tdrag | 2 |" in text and "WAR − r3d18" in text and "pointing game" in text
    assert png.stat().st_size > 1000
    # A second call reuses the finished runs.
    before = (tmp_path / "abl" / "runs" / "tdrag" / "seed_0" / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert bench.main(["--out", str(tmp_path / "abl"), "--clips", "21", "--epochs", "1", "--variants", "tdrag",
                       "--seeds", "0", "--workers", "1"]) == 0
    assert (tmp_path / "abl" / "runs" / "tdrag" / "seed_0" / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_another_t_gets_its_own_cache(tmp_path):
    from tdrag.config import load_config
    from tdrag.data.cache import open_cache

    bench = _load()
    assert bench.main(["--out", str(tmp_path / "abl"), "--clips", "21", "--epochs", "1", "--variants", "r3d18",
                       "--seeds", "0", "--workers", "1", "--name", "t4", "--extra", "data.frames=4"]) == 0
    config = load_config(tmp_path / "abl" / "runs" / "r3d18_t4" / "seed_0" / "config.yaml")
    assert (config.data.frames, Path(config.data.cache).name) == (4, "cache_uniform_t4")
    assert open_cache(config.data.cache).num_frames == 4
    assert open_cache(tmp_path / "abl" / "cache_uniform").num_frames == 8  # the benchmark's own T is untouched
