"""`tdrag demo` at tiny sizes: data, cache and run under --out; a second call reuses them."""

from __future__ import annotations

import json

from tdrag.cli import main

TINY = ["synth.clips=35", "synth.render_size=32", "data.frames=8", "data.size=32", "data.crop=28",
        "model.width=8", "model.gru_hidden=16", "train.epochs=1", "train.batch_size=8"]


def test_demo_cli_tiny(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress", *TINY]) == 0
    printed = capsys.readouterr().out
    assert str(out / "run") in printed and "report" in printed
    assert (out / "data" / "synthetic" / "meta.json").is_file()
    assert (out / "cache" / "manifest.json").is_file()
    metrics = json.loads((out / "run" / "report" / "metrics.json").read_text())
    assert metrics["last"]["epoch"] == 1 and metrics["model"] == "tdrag"
    stamp = (out / "run" / "checkpoints" / "last.pt").stat().st_mtime_ns
    # Second call: same settings, nothing retrained.
    assert main(["demo", "--out", str(out), "--no-progress", *TINY]) == 0
    assert (out / "run" / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp


def test_demo_config_is_the_shipped_preset(tmp_path):
    from tdrag.train.demo import DEMO_CONFIG, demo_config

    config = demo_config(tmp_path)
    assert DEMO_CONFIG.name == "synthetic_demo.yaml"
    assert config.train.run_dir == str(tmp_path / "run") and config.data.cache == str(tmp_path / "cache")
    assert config.train.device == "cpu" and config.synth.preset == "easy"
