"""`tdrag train` and `tdrag eval` from the command line."""

from __future__ import annotations

import csv
import shutil

from tdrag.cli import main
from tdrag.config import save_config
from tests.run_fixtures import tiny_config


def test_train_cli_one_epoch_then_resume_and_extend(tiny_cache, tmp_path, capsys):
    config_path = tmp_path / "tiny.yaml"
    save_config(tiny_config(tiny_cache, tmp_path / "run", epochs=1), config_path)
    assert main(["train", "--config", str(config_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "last epoch" in out and "per_class_recall.md" in out
    # A second plain call refuses to clobber the run, naming the way out.
    assert main(["train", "--config", str(config_path), "--no-progress"]) == 1
    assert "--resume" in capsys.readouterr().err
    # Resume from the run's own config with one more epoch.
    assert main(["train", "--config", str(tmp_path / "run" / "config.yaml"), "train.epochs=2", "--resume",
                 "--no-progress"]) == 0
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1", "2"]


def test_train_cli_bad_override_names_the_key(tiny_cache, tmp_path, capsys):
    config_path = tmp_path / "tiny.yaml"
    save_config(tiny_config(tiny_cache, tmp_path / "run"), config_path)
    assert main(["train", "--config", str(config_path), "train.epocs=3"]) == 2
    assert "train.epocs" in capsys.readouterr().err
    assert main(["train", "--config", str(config_path), "train.epochs=many"]) == 2
    assert "train.epochs: expected an integer" in capsys.readouterr().err


def test_train_cli_missing_cache_is_one_line_error(tmp_path, capsys):
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"data:\n  cache: {tmp_path / 'nope'}\ntrain:\n  run_dir: {tmp_path / 'run'}\n  device: cpu\n")
    assert main(["train", "--config", str(config_path), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_eval_cli_rewrites_report(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "report")
    assert main(["eval", str(run), "--device", "cpu", "--no-progress"]) == 0
    assert (run / "report" / "metrics.json").is_file()
    assert "test WAR" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "missing")]) == 1
    assert "missing" in capsys.readouterr().err
