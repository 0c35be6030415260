"""bench_time end to end on the tiny run laid out as an ablation's runs folder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_bench_time_measures_keeps_and_reuses(tiny_run, tmp_path):
    import bench_time

    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "tdrag" / "seed_0")
    out, md = tmp_path / "out", tmp_path / "time.md"
    argv = ["--runs", str(runs), "--variants", "tdrag,r3d18", "--seeds", "0", "--out", str(out), "--markdown", str(md)]
    assert bench_time.main(argv) == 0
    text = md.read_text()
    assert "| tdrag | chosen | on | 1 |" in text and "| tdrag | frame ablation | 1 |" in text
    saved = out / "checks" / "tdrag_seed0.json"
    stamp = saved.stat().st_mtime_ns
    assert bench_time.main(argv) == 0  # the second call reads what the first measured
    assert saved.stat().st_mtime_ns == stamp and md.read_text() == text
