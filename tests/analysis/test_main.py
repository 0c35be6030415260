"""`python -m analysis report RUN_DIR` and the `tdrag-report` console script."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest

from analysis.__main__ import main
from tdrag.data.labels import DFEW_CLASSES
from tdrag.runs.predictions import Predictions
from tdrag.runs.report import write_report


def make_run(run_dir, n: int = 14):
    """predictions.csv and report/ through the engine's writer (no log.csv: curves are skipped)."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 7
    probs = rng.dirichlet(np.ones(7), size=n).astype(np.float32)
    preds = Predictions(rows=np.arange(n), video_ids=[str(i) for i in range(n)], labels=labels, probabilities=probs)
    write_report(run_dir, DFEW_CLASSES, last=(1, preds), best=None, selection_split="test")


def test_report_command_writes_figures(tmp_path, capsys):
    make_run(tmp_path / "run")
    assert main(["report", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 file(s)" in out
    for name in ("confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_recall.png"):
        assert (tmp_path / "run" / "report" / name).is_file()
        assert name in out


def test_sub_command_may_be_left_out_and_errors_name_the_file(tmp_path, capsys):
    (tmp_path / "untrained").mkdir()
    # `tdrag-report DIR` is read as `report DIR`; a missing predictions.csv says what to run.
    assert main([str(tmp_path / "untrained")]) == 1
    err = capsys.readouterr().err
    assert "no predictions.csv" in err and "tdrag eval" in err and str(tmp_path / "untrained") in err


@pytest.mark.parametrize("problem, expected", [
    ("short", ":3: 2 cells where the header has 10 (a cut-off or malformed row)"),
    ("cut", ":3: 4 cells where the header has 10 (a cut-off or malformed row)"),
    ("abc", ":2 (label): label 'abc' is not a class index or one of Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear"),
])
def test_bad_predictions_end_in_one_error_line_and_status_1(tmp_path, problem, expected):
    make_run(tmp_path / "run")
    path = tmp_path / "run" / "predictions.csv"
    lines = path.read_text().splitlines()
    if problem == "short":
        lines[2] = ",".join(lines[2].split(",")[:2])
    elif problem == "cut":
        lines = lines[:2] + [lines[2][: len(",".join(lines[2].split(",")[:4]))]]
    else:
        cells = lines[1].split(",")
        cells[1] = "abc"
        lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "analysis", "report", str(tmp_path / "run")], capture_output=True,
                          text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {path}{expected}"], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_module_answers_help_and_console_script_points_at_main():
    out = subprocess.run([sys.executable, "-m", "analysis", "report", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "RUN_DIR" in out and "summary.json" in out
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("tdrag-report") == "analysis.__main__:main"
