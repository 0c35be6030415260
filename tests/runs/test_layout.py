"""tdrag.runs.layout: RunPaths names the files, says "finished?", and finds a saved run's data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tdrag.config import save_config
from tdrag.runs.layout import REPORT_FILES, RUN_FILES, RunExistsError, RunPaths, plan_run_dir
from tests.run_fixtures import tiny_config


def test_the_names_are_the_run_files(tmp_path):
    paths = RunPaths(tmp_path)
    named = [paths.config, paths.log, paths.predictions, paths.last, paths.best,
             *(paths.report_file(name) for name in REPORT_FILES)]
    assert sorted(str(p.relative_to(tmp_path)) for p in named) == sorted(RUN_FILES)
    assert paths.metrics == paths.report_file("metrics.json") == tmp_path / "report" / "metrics.json"
    assert paths.predictions_last == tmp_path / "report" / "predictions_last.csv"
    assert paths.lock.parent == tmp_path and str(paths.lock.relative_to(tmp_path)) not in RUN_FILES
    with pytest.raises(ValueError, match="not a report file"):
        paths.report_file("notes.md")


def _fake_run(root: Path, config_epochs: int, report_epoch: int | None, files=("last", "predictions")) -> RunPaths:
    paths = RunPaths(root)
    save_config(tiny_config_like(config_epochs), paths.config)
    for name in files:
        target = getattr(paths, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
    if report_epoch is not None:
        paths.report.mkdir(exist_ok=True)
        paths.metrics.write_text(json.dumps({"last": {"epoch": report_epoch}}))
    return paths


def tiny_config_like(epochs: int):
    from tdrag.config import Config, replace

    return replace(Config(), train={"epochs": epochs})


@pytest.mark.parametrize("config_epochs, report_epoch, files, asked, finished", [
    (3, 3, ("last", "predictions"), None, True),        # the report covers config.yaml's epochs
    (3, 2, ("last", "predictions"), None, False),       # killed after epoch 2's report of an earlier call
    (3, 3, ("last", "predictions"), 5, False),          # resumed with more epochs asked for
    (3, None, ("last", "predictions"), None, False),    # no report yet
    (3, 3, ("predictions",), None, False),              # no last.pt
    (3, 3, ("last",), None, False),                     # no predictions.csv
])
def test_finished_means_the_report_covers_the_epochs_asked_for(tmp_path, config_epochs, report_epoch, files, asked,
                                                               finished):
    paths = _fake_run(tmp_path / "run", config_epochs, report_epoch, files)
    assert paths.finished(asked) is finished


def test_plan_run_dir_refuses_an_earlier_run_and_lists_what_overwrite_replaces(tmp_path):
    paths = _fake_run(tmp_path / "run", 3, 3)
    (paths.root / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="already holds a run"):
        plan_run_dir(paths.root, resume=False, overwrite=False)
    resume_from, stale = plan_run_dir(paths.root, resume=False, overwrite=True)
    assert resume_from is None and "notes.txt" not in stale
    assert set(stale) == {"config.yaml", "checkpoints/last.pt", "predictions.csv", "report/metrics.json"}
    assert plan_run_dir(paths.root, resume=True, overwrite=False) == (paths.last, [])


# ------------------------------------------------------------------------------- saved paths


def test_locate_takes_the_path_under_the_folder_training_ran_in(tmp_path):
    (tmp_path / "work" / "data").mkdir(parents=True)
    paths = RunPaths(tmp_path / "work" / "runs" / "r")
    assert paths.locate("data", tmp_path / "work", "runs/r") == str(tmp_path / "work" / "data")
    assert paths.locate("", tmp_path / "work", "runs/r") == ""
    absolute = str(tmp_path / "work" / "data")
    assert paths.locate(absolute, "/nowhere", "runs/r") == absolute


def test_locate_follows_a_run_moved_with_its_data(tmp_path):
    """Trained in /old (gone): runs/demo/run with data at runs/demo/data; now both live under /new."""
    new = tmp_path / "new"
    (new / "runs" / "demo" / "data").mkdir(parents=True)
    paths = RunPaths(new / "runs" / "demo" / "run")
    assert paths.locate("runs/demo/data", tmp_path / "old", "runs/demo/run") == str(new / "runs" / "demo" / "data")
    # An absolute path of the old place, the run dir given absolute too.
    assert paths.locate(str(tmp_path / "old" / "runs" / "demo" / "data"), tmp_path / "old",
                        str(tmp_path / "old" / "runs" / "demo" / "run")) == str(new / "runs" / "demo" / "data")
    # Nothing there either: the path as training used it, for the error to name.
    assert paths.locate("runs/demo/cache", tmp_path / "old", "runs/demo/run") == str(
        tmp_path / "old" / "runs" / "demo" / "cache")


def test_locate_without_a_recorded_folder_reads_it_off_the_run_path(tmp_path, monkeypatch):
    (tmp_path / "repo" / "runs" / "demo" / "data").mkdir(parents=True)
    (tmp_path / "repo" / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "repo" / "notebooks")
    paths = RunPaths(Path("..") / "runs" / "demo" / "run")
    assert Path(paths.locate("runs/demo/data", None, "runs/demo/run")).resolve() == (
        tmp_path / "repo" / "runs" / "demo" / "data").resolve()


@pytest.fixture
def relative_run(tiny_cache, tmp_path, monkeypatch):
    """A run trained in ``tmp_path/work`` with relative paths, as `make demo` writes runs/demo/run."""
    from tdrag.train.fit import fit

    work = tmp_path / "work"
    shutil.copytree(tiny_cache.root, work / "data")
    shutil.copytree(tiny_cache.cache, work / "cache")
    monkeypatch.chdir(work)
    config = tiny_config(tiny_cache, "runs/r", epochs=1)
    from tdrag.config import replace

    fit(replace(config, data={"root": "data", "cache": "cache"}), progress=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return work


def test_a_saved_run_opened_from_another_folder_finds_its_ground_truth(relative_run, tmp_path):
    """Every reader of a run goes through checkpoint_config: the analysis Run, `tdrag eval`, load_model."""
    from analysis.internals.run import open_run
    from tdrag.models.registry import load_model
    from tdrag.runs.checkpoints import checkpoint_config, load_checkpoint
    from tdrag.train.evaluate import evaluate_run

    run_dir = relative_run / "runs" / "r"
    assert os.getcwd() != str(relative_run)
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["workdir"] == str(relative_run)
    config = checkpoint_config(state, run_dir / "checkpoints" / "last.pt")
    assert config.data.root == str(relative_run / "data") and config.data.cache == str(relative_run / "cache")
    assert load_model(run_dir)[1].data.cache == str(relative_run / "cache")
    run = open_run(run_dir, device="cpu", max_clips=1, progress=False)
    assert run.synthetic and run.data_root == relative_run / "data"
    masks = run.masks([0])
    assert masks.shape[0] == 1 and masks.any()
    assert evaluate_run(run_dir, device="cpu", progress=False)["cache"] == str(relative_run / "cache")

    # The whole folder moved (another disk, another machine): the data is found beside the run.
    moved = tmp_path / "moved"
    shutil.move(str(relative_run), moved)
    run = open_run(moved / "runs" / "r", device="cpu", max_clips=1, progress=False)
    assert run.synthetic and Path(run.data_root) == moved / "data"
