"""Nothing lost, no tracebacks: every command that writes refuses what is not its own, and every
failure a user can cause ends in one ``error: <path or key>: <problem>`` line."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tdrag.cli import main
from tdrag.config import load_config, replace, save_config
from tdrag.runs.checkpoints import load_checkpoint
from tdrag.runs.layout import RunPaths
from tests.data.conftest import write_dfew_tree
from tests.run_fixtures import tiny_config

REPO = Path(__file__).resolve().parents[2]


def _one_error_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Traceback" not in err, err
    last = lines[-1]
    assert last.startswith("error: "), last
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    return last


def _tree_snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------- prepare


@pytest.mark.parametrize("where", ["root", "parent"])
def test_prepare_overwrite_never_deletes_the_dataset_or_a_folder_holding_it(tmp_path, capsys, where):
    tree = write_dfew_tree(tmp_path / "home" / "DFEW", num_clips=5, lengths=4, size=16)
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    before = _tree_snapshot(tmp_path / "home")
    out = tree.root if where == "root" else tree.root.parent
    code = main(["prepare", "--root", str(tree.root), "--out", str(out), "--frames", "4", "--size", "16",
                 "--workers", "1", "--overwrite", "--no-progress"])
    assert code == 1
    _one_error_line(capsys.readouterr().err, str(out), "the input")
    assert _tree_snapshot(tmp_path / "home") == before


def test_prepare_overwrite_refuses_a_folder_with_foreign_files(tmp_path, capsys):
    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=5, lengths=4, size=16)
    out = tmp_path / "cache"
    args = ["prepare", "--root", str(tree.root), "--out", str(out), "--frames", "4", "--size", "16",
            "--workers", "1", "--no-progress"]
    assert main(args) == 0
    (out / "notes.txt").write_text("mine")
    assert main(args + ["--size", "8", "--overwrite"]) == 1
    _one_error_line(capsys.readouterr().err, str(out), "notes.txt")
    assert (out / "notes.txt").read_text() == "mine" and (out / "frames.u8").is_file()


def test_prepare_names_a_changed_label_and_rebuilds_only_when_asked(tmp_path, capsys):
    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=10, lengths=4, size=16)
    out = tmp_path / "cache"
    args = ["prepare", "--root", str(tree.root), "--out", str(out), "--frames", "4", "--size", "16",
            "--workers", "1", "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    # Relabel clip 00003 (CSV label 3 -> 5) everywhere it is listed.
    for path in tree.root.glob("EmoLabel_DataSplit/*/set_*.csv"):
        path.write_text(path.read_text().replace("00003,3", "00003,5"))
    assert main(args) == 1
    line = _one_error_line(capsys.readouterr().err, str(out), "sources changed")
    assert "label changed (00003)" in line and "set_" in line and "--overwrite" in line
    index = json.loads((out / "index.json").read_text())
    assert next(r for r in index if r["video_id"] == "00003")["label"] == 2  # untouched so far
    assert main(args + ["--overwrite"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert next(r for r in index if r["video_id"] == "00003")["label"] == 4
    # Replaced frames are a change of sources too.
    frame = tree.clip_root / "00007" / "2.jpg"
    shutil.copy(tree.clip_root / "00007" / "1.jpg", frame)
    os.utime(frame, ns=(time.time_ns(), time.time_ns() + 10**9))
    capsys.readouterr()
    assert main(args) == 1
    assert "frame files changed (00007)" in _one_error_line(capsys.readouterr().err)


def test_prepare_on_a_full_disk_fails_cleanly_with_workers(tmp_path):
    """A file-size limit stands in for a full disk: the frames file cannot be allocated."""
    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=10, lengths=4, size=32)
    out = tmp_path / "cache"

    def limit():  # 20 kB: the CSVs fit, the cache (10 x 4 x 32 x 32 x 3 = 123 kB) does not
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    for workers in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "tdrag", "prepare", "--root", str(tree.root), "--out", str(out), "--frames", "4",
             "--size", "32", "--workers", workers, "--no-progress"],
            capture_output=True, text=True, timeout=120, preexec_fn=limit, cwd=REPO)
        assert done.returncode == 1, done.stderr
        _one_error_line(done.stderr, "frames.u8")
        assert not out.exists()
        assert not list(tmp_path.glob(".cache.tmp-*")), "working folder left behind"


def test_prepare_verify_decodes_every_frame_and_says_so(tmp_path):
    from tdrag.data.prepare import prepare_cache

    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=6, lengths=9, size=16)
    (tree.clip_root / "00002" / "3.jpg").write_bytes(b"not a jpeg")  # uniform 4 of 9 reads files 2, 4, 6, 8
    quick = json.loads((prepare_cache(tree.root, tmp_path / "quick", frames=4, size=16, keyframes="uniform",
                                      workers=1, progress=False) / "manifest.json").read_text())
    assert quick["skipped"] == [] and quick["decoded"].startswith("keyframes only")
    full = json.loads((prepare_cache(tree.root, tmp_path / "full", frames=4, size=16, keyframes="uniform",
                                     workers=1, progress=False, verify=True) / "manifest.json").read_text())
    assert full["decoded"] == "all frames"
    assert [s["video_id"] for s in full["skipped"]] == ["00002"] and "3.jpg" in full["skipped"][0]["reason"]


def test_sidecars_and_cover_images_are_not_frames(tmp_path):
    from tdrag.data.prepare import prepare_cache

    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=6, lengths=5, size=16)
    folder = tree.clip_root / "00004"
    (folder / "._1.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS resource fork sidecar
    (folder / ".DS_Store").write_bytes(b"\x00")
    shutil.copy(folder / "1.jpg", folder / "cover.jpg")
    manifest = json.loads((prepare_cache(tree.root, tmp_path / "c", frames=4, size=16, workers=1, progress=False)
                           / "manifest.json").read_text())
    assert manifest["skipped"] == []  # the sidecar did not sink the clip
    assert manifest["ignored_files"] == [{"video_id": "00004", "files": ["cover.jpg"]}]
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    assert next(r for r in index if r["video_id"] == "00004")["num_source_frames"] == 5


# ------------------------------------------------------------------------------------------ train


def test_train_without_last_pt_deletes_nothing_before_checking_its_inputs(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "checkpoints" / "last.pt").unlink()
    (run / "report" / "my_notes.md").write_text("keep")
    (run / "plots.png").write_bytes(b"mine")
    before = _tree_snapshot(run)
    config = tiny_config_for(run, tmp_path)
    for extra in ([], ["--resume"]):
        assert main(["train", "--config", str(config), "--no-progress", *extra]) == 1
        _one_error_line(capsys.readouterr().err, str(run))
        assert _tree_snapshot(run) == before
    # A bad cache with --overwrite: still nothing removed, the cache is named.
    assert main(["train", "--config", str(config), "--no-progress", "--overwrite",
                 f"data.cache={tmp_path / 'no_cache'}"]) == 1
    _one_error_line(capsys.readouterr().err, "no_cache")
    assert _tree_snapshot(run) == before


def tiny_config_for(run: Path, tmp_path: Path) -> Path:
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    from tdrag.config import config_from_dict, replace

    config = replace(config_from_dict(state["config"]), train={"run_dir": str(run), "epochs": 1})
    path = tmp_path / "config.yaml"
    save_config(config, path)
    return path


def test_overwrite_replaces_only_tdrags_files(tiny_cache, tmp_path):
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, run, epochs=1), config)
    assert main(["train", "--config", str(config), "--no-progress"]) == 0
    (run / "report" / "my_notes.md").write_text("keep")
    (run / "notes.txt").write_text("keep")
    assert main(["train", "--config", str(config), "--no-progress", "--overwrite"]) == 0
    assert (run / "report" / "my_notes.md").read_text() == "keep" and (run / "notes.txt").read_text() == "keep"
    assert (run / "checkpoints" / "last.pt").is_file()


def test_run_dir_may_not_hold_the_cache(tiny_cache, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, tiny_cache.cache.parent, epochs=1), config)
    assert main(["train", "--config", str(config), "--no-progress", "--overwrite"]) == 1
    _one_error_line(capsys.readouterr().err, "train.run_dir", "the input")


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tiny_cache, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    # The reference: the same command, uninterrupted, in the same environment.
    tiny_run = tmp_path / "reference"
    save_config(tiny_config(tiny_cache, tiny_run), tmp_path / "r.yaml")
    done = subprocess.run([sys.executable, "-m", "tdrag", "train", "--config", str(tmp_path / "r.yaml"), "--no-progress"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, run), config)
    command = [sys.executable, "-m", "tdrag", "train", "--config", str(config), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=REPO)
    # Kill it hard once epoch 1 is written (its checkpoint exists), i.e. during epoch 2.
    deadline = time.time() + 240
    while not (run / "checkpoints" / "last.pt").is_file():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint after 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    if load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] >= 2:
        pytest.skip("the run finished before it could be killed (machine too fast for the probe)")
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ours, reference = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (run, tiny_run))
    for key, value in reference["model"].items():
        assert torch.equal(ours["model"][key], value), key

    def rows(path):
        with open(path, newline="") as handle:
            return [{k: v for k, v in r.items() if k not in ("epoch_seconds", "clips_per_second")}
                    for r in csv.DictReader(handle)]

    assert rows(run / "log.csv") == rows(tiny_run / "log.csv")
    assert (run / "predictions.csv").read_text() == (tiny_run / "predictions.csv").read_text()
    assert not list(run.rglob("*.tmp"))


def test_a_held_run_dir_refuses_a_second_command_and_a_killed_holder_blocks_no_resume(tiny_cache, tmp_path):
    """Two trainings on one run dir cannot both run; the lock dies with its (SIGKILLed) holder."""
    import socket

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, run, epochs=200), config)
    tdrag = [sys.executable, "-m", "tdrag"]
    with open(tmp_path / "holder.err", "wb") as holder_err:
        holder = subprocess.Popen([*tdrag, "train", "--config", str(config), "--no-progress"],
                                  stdout=subprocess.DEVNULL, stderr=holder_err, env=env, cwd=REPO)
    try:
        deadline = time.time() + 240
        while not (run / "checkpoints" / "last.pt").is_file():
            assert holder.poll() is None, (tmp_path / "holder.err").read_text()[-2000:]
            assert time.time() < deadline, "no checkpoint after 240 s"
            time.sleep(0.05)
        for second in (["train", "--config", str(config), "--overwrite"], ["train", "--config", str(config), "--resume"],
                       ["eval", str(run), "--device", "cpu"], ["cv", "--config", str(config), "--folds", "1"]):
            done = subprocess.run([*tdrag, *second, "--no-progress"], capture_output=True, text=True, env=env,
                                  cwd=REPO, timeout=600)
            assert done.returncode == 1, (second, done.stderr[-2000:])
            _one_error_line(done.stderr, str(run), "in use by", f"pid {holder.pid}", socket.gethostname(),
                            f"tdrag train --config {config}")
            assert holder.poll() is None, "the second command must not disturb the first"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    reached = load_checkpoint(run / "checkpoints" / "last.pt")["epoch"]
    assert (run / ".tdrag.lock").is_file()  # left behind by the killed holder, and no obstacle:
    done = subprocess.run([*tdrag, "train", "--config", str(config), "--resume", f"train.epochs={reached + 1}",
                           "--no-progress"], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == reached + 1
    assert json.loads((run / "report" / "metrics.json").read_text())["last"]["epoch"] == reached + 1


def test_a_checkpoint_that_cannot_be_written_ends_in_one_line_and_the_previous_one_survives(tiny_run, tmp_path):
    """A full disk at the epoch checkpoint (here a file-size limit: torch's zip writer then raises
    RuntimeError "unexpected pos", not OSError): one error line, last.pt as it was, --resume works."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = tmp_path / "c.yaml"
    save_config(replace(load_config(run / "config.yaml"), train={"run_dir": str(run), "epochs": 3}), config)
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()
    limit = len(before) // 2  # room for config.yaml and log.csv, not for a checkpoint

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tdrag", "train", "--config", str(config), "--resume", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
                          preexec_fn=small_files)
    assert done.returncode == 1, done.stderr[-2000:]
    _one_error_line(done.stderr, "checkpoints/", "cannot write the epoch 3 checkpoint", "is kept",
                    f"--resume continues from {last}")
    assert last.read_bytes() == before and not list(run.rglob("*.tmp"))
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(last)["epoch"] == 3


def test_resume_on_a_rebuilt_cache_is_refused(tiny_cache, tmp_path, capsys):
    from tests.run_fixtures import make_tiny_data

    data = make_tiny_data(tmp_path / "own")
    run = tmp_path / "run"
    config = tmp_path / "c.yaml"
    save_config(tiny_config(data, run, epochs=1), config)
    assert main(["train", "--config", str(config), "--no-progress"]) == 0
    # Relabel one clip and rebuild the cache in place.
    path = next(data.root.glob("EmoLabel_DataSplit/train*/set_2.csv"))
    lines = path.read_text().splitlines()
    vid, label = lines[1].split(",")
    lines[1] = f"{vid},{int(label) % 7 + 1}"
    path.write_text("\n".join(lines) + "\n")
    assert main(["prepare", "--root", str(data.root), "--out", str(data.cache), "--frames", "8", "--size", "32",
                 "--workers", "1", "--overwrite", "--no-progress"]) == 0
    assert main(["train", "--config", str(run / "config.yaml"), "train.epochs=2", "--resume", "--no-progress"]) == 1
    _one_error_line(capsys.readouterr().err, "rebuilt from changed sources")


# ----------------------------------------------------------------------------------- config, cv, eval


@pytest.mark.parametrize("override, fragments", [
    ("train.device=tpu", ("train.device", "'tpu'")),
    ("data.crop=0", ("data.crop", "at least 1")),
    ("train.lr=-1", ("train.lr", "> 0")),
    ("data.crop=200", ("data.crop", "exceeds data.size")),
    ("model.dropout=1.5", ("model.dropout",)),
])
def test_bad_config_values_are_refused_before_any_work(tiny_cache, tmp_path, capsys, override, fragments):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, tmp_path / "run"), config)
    assert main(["train", "--config", str(config), "--no-progress", override]) == 2
    _one_error_line(capsys.readouterr().err, *fragments)
    assert not (tmp_path / "run").exists()


def test_yaml_1_2_numbers_and_unreadable_config_files(tiny_cache, tmp_path, capsys):
    from tdrag.config import load_config

    assert load_config(None, ["train.lr=1e-3"]).train.lr == pytest.approx(0.001)
    (tmp_path / "f.yaml").write_text("train:\n  lr: 5e-4\n  weight_decay: 1E-5\n")
    assert load_config(tmp_path / "f.yaml").train.lr == pytest.approx(5e-4)
    binary = tmp_path / "weights.pt"
    torch.save({"a": torch.zeros(3)}, binary)
    for path, fragment in ((tmp_path, "is a folder"), (binary, "not a text file"),
                           (tmp_path / "missing.yaml", "not found")):
        assert main(["train", "--config", str(path), "--no-progress"]) == 2
        _one_error_line(capsys.readouterr().err, str(path), fragment)


def test_cv_checks_every_fold_before_training_any(tiny_cache, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, tmp_path / "cv"), config)
    assert main(["cv", "--config", str(config), "--folds", "1,9", "--no-progress"]) == 1
    _one_error_line(capsys.readouterr().err, "--folds", "9", "nothing was trained")
    assert not (tmp_path / "cv").exists()


def test_eval_on_a_checkpoint_of_another_architecture(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in ("last.pt", "best.pt"):
        state = load_checkpoint(run / "checkpoints" / name)
        state["config"]["model"]["width"] = 16  # the weights are width 8
        torch.save(state, run / "checkpoints" / name)
    assert main(["eval", str(run), "--device", "cpu", "--no-progress"]) == 1
    _one_error_line(capsys.readouterr().err, "weights do not fit")


# ------------------------------------------------------------------- round 3 (issue 26): nothing lost


def _synth(out: Path, *extra: str) -> int:
    return main(["synth", "--out", str(out), "--clips", "7", "--size", "32", "--workers", "1", "--no-progress",
                 *extra])


@pytest.mark.parametrize("where, named", [
    ("EmoLabel_DataSplit/notes.txt", None), ("synthetic/notes.txt", None), ("synthetic/masks/notes.txt", None),
    ("Clip/clip_224x224/00003/notes.txt", None), ("synthetic/mine/deeper/notes.txt", "synthetic/mine"),
])
def test_a_synth_rerun_refuses_a_users_file_at_any_depth(tmp_path, capsys, where, named):
    out = tmp_path / "D"
    assert _synth(out) == 0
    mine = out / where
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("mine")
    before = _tree_snapshot(out)
    assert _synth(out, "--seed", "1") == 1
    _one_error_line(capsys.readouterr().err, str(out), repr(named or where), "which tdrag did not write")
    assert _tree_snapshot(out) == before and mine.read_text() == "mine"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging or lock left


@pytest.mark.parametrize("layout", ["dfew", "ferv39k", "mafw"])
def test_a_synth_rerun_replaces_its_own_set_in_every_layout_with_the_umasks_mode(tmp_path, layout):
    out = tmp_path / "D"
    previous = os.umask(0o022)
    try:
        assert _synth(out, "--layout", layout) == 0
        assert _synth(out, "--layout", layout, "--seed", "1") == 0  # every file its own, at every depth
    finally:
        os.umask(previous)
    assert json.loads((out / "synthetic" / "meta.json").read_text())["seed"] == 1
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: the group may read it


def test_a_killed_synth_leaves_a_staging_folder_the_rerun_removes(tmp_path):
    out = tmp_path / "D"
    left = tmp_path / ".D.synth-abc123xy"  # what a SIGKILLed `tdrag synth` leaves
    (left / "Clip").mkdir(parents=True)
    (left / "Clip" / "1.jpg").write_bytes(b"half")
    assert _synth(out) == 0
    assert not left.exists() and (out / "synthetic" / "meta.json").is_file()


def _fake_dossier(out: Path, classes: list[str]) -> None:
    """A previous dossier as build_dossier leaves one (marker, index, region CSV, pages, notebooks)."""
    from analysis.report.dossier import FORMAT, MARKER, REGION_CSV

    (out / "notebooks").mkdir(parents=True)
    for name in classes:
        (out / f"{name}.html").write_text("<html></html>")
        (out / "notebooks" / f"{name}.ipynb").write_text("{}")
    (out / "index.html").write_text("<html></html>")
    (out / REGION_CSV).write_text("class,map,region,share\n")
    (out / MARKER).write_text(json.dumps({"format": FORMAT, "classes": classes, "pages": {}, "failed": {}}))


@pytest.mark.parametrize("where", ["notes.txt", "notebooks/notes.txt", "notebooks/mine/notes.txt"])
def test_a_dossier_rebuild_refuses_a_users_file_at_any_depth(tiny_run, tmp_path, capsys, where):
    from analysis.report.cli import main as analysis_main

    out = tmp_path / "dossier"
    _fake_dossier(out, ["Happy", "Sad"])
    mine = out / where
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("mine")
    before = _tree_snapshot(out)
    assert analysis_main(["dossier", str(tiny_run), "--out", str(out), "--classes", "Happy", "--device", "cpu",
                          "-q"]) == 1
    _one_error_line(capsys.readouterr().err, str(out), repr(where if "mine" not in where else "notebooks/mine"),
                    "which tdrag did not write")
    assert _tree_snapshot(out) == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("command", ["train", "cv"])
@pytest.mark.parametrize("inside", ["data", "cache"])
def test_a_run_dir_inside_its_data_or_cache_is_refused(tiny_cache, tmp_path, capsys, inside, command):
    run = (tiny_cache.root / "Clip" / "run") if inside == "data" else (tiny_cache.cache / "run")
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, run, epochs=1), config)
    assert main([command, "--config", str(config), "--no-progress"]) == 1
    _one_error_line(capsys.readouterr().err, str(run), "train.run_dir lies inside",
                    str(tiny_cache.root if inside == "data" else tiny_cache.cache))
    assert not run.exists()


def test_a_cache_inside_a_synthetic_set_is_refused(tmp_path, capsys):
    data = tmp_path / "D"
    assert _synth(data) == 0
    assert main(["prepare", "--root", str(data), "--out", str(data / "cache"), "--frames", "4", "--size", "32",
                 "--workers", "1", "--no-progress"]) == 1
    _one_error_line(capsys.readouterr().err, str(data / "cache"), "lies inside", "tdrag synth")
    assert not (data / "cache").exists()


def _cut_run(tiny_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the 2-epoch tiny run whose log.csv lost its last row (killed between last.pt and
    the log); returns the run and a config of it."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    lines = (run / "log.csv").read_text().splitlines(keepends=True)
    (run / "log.csv").write_text("".join(lines[:-1]))
    config = tmp_path / "c.yaml"
    save_config(replace(load_config(run / "config.yaml"), train={"run_dir": str(run)}), config)
    return run, config


def _epochs_logged(run: Path) -> list[int]:
    with open(run / "log.csv", newline="") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_resuming_a_finished_run_repairs_a_cut_log_from_its_checkpoint(tiny_run, tmp_path):
    run, config = _cut_run(tiny_run, tmp_path)
    assert _epochs_logged(run) == [1]
    (run / ".log.csv.x1y2z3.tmp").write_text("epoch,train_loss\n1,")  # a kill while writing the log, too
    assert main(["train", "--config", str(config), "--resume", "--no-progress"]) == 0
    assert not list(run.rglob("*.tmp"))
    history = load_checkpoint(run / "checkpoints" / "last.pt")["history"]
    assert _epochs_logged(run) == [row["epoch"] for row in history] == [1, 2]
    assert (run / "log.csv").read_text() == (tiny_run / "log.csv").read_text()
    assert json.loads((run / "report" / "metrics.json").read_text())["last"]["epoch"] == 2


def test_a_cut_log_is_named_by_the_report_and_repaired_by_eval(tiny_run, tmp_path, capsys):
    from analysis.report.cli import main as analysis_main

    run, _ = _cut_run(tiny_run, tmp_path)
    assert analysis_main(["report", str(run)]) == 1
    _one_error_line(capsys.readouterr().err, str(run / "log.csv"), "ends at epoch 1", "reports epoch 2",
                    f"tdrag eval {run}")
    before = {k: v for k, v in _tree_snapshot(tiny_run).items() if k != "log.csv"}
    assert {k: v for k, v in _tree_snapshot(run).items() if k != "log.csv"} == before  # nothing plotted
    assert not RunPaths(run).finished()  # so `tdrag cv --resume` resumes it (which repairs it)
    assert main(["eval", str(run), "--device", "cpu", "--no-progress"]) == 0
    assert _epochs_logged(run) == [1, 2] and RunPaths(run).finished()
    assert analysis_main(["report", str(run)]) == 0


def test_analysis_commands_end_os_errors_in_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    from analysis.report.cli import main as analysis_main

    (tmp_path / "a_file").write_text("x")
    for command in (["dossier", str(tiny_run), "--out", str(tmp_path / "a_file" / "dossier"), "--classes", "Happy"],
                    ["regions", str(tiny_run), "--out", str(tmp_path / "a_file" / "r.csv")]):
        assert analysis_main([*command, "--device", "cpu"]) == 1
        _one_error_line(capsys.readouterr().err, str(tmp_path / "a_file"), "is a file, not a folder")
    # A read-only run directory (simulated: the tests may run as root, whom permissions do not stop).
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)

    def refused(*args, dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / ".x.tmp"))

    monkeypatch.setattr("tdrag.atomic.tempfile.mkstemp", refused)
    assert analysis_main(["report", str(run)]) == 1
    _one_error_line(capsys.readouterr().err, str(run / "report"), "Permission denied")


def test_an_unwritable_dossier_out_is_named_as_out(tiny_run, tmp_path, capsys, monkeypatch):
    from analysis.report import dossier
    from analysis.report.cli import main as analysis_main

    def refused(prefix="", dir=None, **kwargs):
        raise PermissionError(13, "Permission denied", str(Path(dir) / f"{prefix}abcd"))

    monkeypatch.setattr(dossier.tempfile, "mkdtemp", refused)
    out = tmp_path / "dossier"
    assert analysis_main(["dossier", str(tiny_run), "--out", str(out), "--classes", "Happy", "--device", "cpu",
                          "--max-clips", "1", "-q"]) == 1
    line = _one_error_line(capsys.readouterr().err, f"{out}: cannot be written", "Permission denied")
    assert ".partial-" not in line


def _flag_template(path: Path, flag: Path) -> Path:
    """A class page that says it started (``flag``) and then works for a minute."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("RUN_DIR = ''\nCLASS_NAME = ''\nDEVICE = 'cpu'\nSMALL = False\n"
                                          "MAX_CLIPS = 0\nCHECKPOINT = 'auto'\nMETHOD = ''\nSTAGE = ''",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"import time\nopen({str(flag)!r}, 'w').close()\ntime.sleep(90)")]
    nbformat.write(nb, path)
    return path


#: ``python -m analysis`` with the class-page notebook given as its first argument.
DOSSIER_MAIN = ("import sys\nfrom pathlib import Path\nimport analysis.report.dossier as d\n"
                "d.TEMPLATE = Path(sys.argv[1])\nfrom analysis.report.cli import main\nsys.exit(main(sys.argv[2:]))\n")


def _start_dossier(tiny_run: Path, template: Path, out: Path) -> subprocess.Popen:
    """``python -m analysis dossier`` with ``template`` as its class page, in a process group of its
    own with SIGINT handled as in a terminal."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", DOSSIER_MAIN, str(template), "dossier", str(tiny_run), "--out",
                             str(out), "--classes", "Happy", "--device", "cpu", "--max-clips", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(flag: Path, process: subprocess.Popen) -> None:
    deadline = time.time() + 240
    while not flag.exists():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.time() < deadline, "the class page did not start in 240 s"
        time.sleep(0.1)


def test_ctrl_c_during_a_dossier_is_one_line_and_leaves_no_staging(tiny_run, tmp_path):
    flag = tmp_path / "started"
    out = tmp_path / "dossier"
    process = _start_dossier(tiny_run, _flag_template(tmp_path / "page.ipynb", flag), out)
    try:
        _wait_for(flag, process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        _, err = process.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and err.strip() == "interrupted", err[-3000:]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["page.ipynb", "started"]


def test_a_killed_dossier_leaves_a_staging_folder_the_rerun_removes(tiny_run, tmp_path):
    flag = tmp_path / "started"
    out = tmp_path / "dossier"
    process = _start_dossier(tiny_run, _flag_template(tmp_path / "page.ipynb", flag), out)
    try:
        _wait_for(flag, process)
    finally:
        kernels = _children(process.pid)  # the kernel runs in a session of its own: kill it by pid
        os.killpg(process.pid, signal.SIGKILL)
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=60)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".dossier.partial-")]
    assert left, "the killed build should have left its staging folder (the probe is broken)"
    from analysis.report.dossier import build_dossier

    previous = os.umask(0o022)
    try:
        result = build_dossier(tiny_run, out, classes=["Happy"], device="cpu", max_clips=1, progress=False,
                               template=_quick_template(tmp_path / "quick.ipynb"))
    finally:
        os.umask(previous)
    assert result.failed == {} and (out / "Happy.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # staging removed, lock released
    assert out.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _quick_template(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("RUN_DIR = ''\nCLASS_NAME = ''\nDEVICE = 'cpu'\nSMALL = False\n"
                                          "MAX_CLIPS = 0\nCHECKPOINT = 'auto'\nMETHOD = ''\nSTAGE = ''",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('page of', CLASS_NAME)")]
    nbformat.write(nb, path)
    return path


OUTPUT_HOLDER = """
import sys, time
from tdrag.ownership import hold_output
with hold_output(sys.argv[1], "prepare"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_prepare_into_one_out_refuses_while_the_first_writes(tmp_path, capsys):
    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=5, lengths=4, size=16)
    out = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", OUTPUT_HOLDER, str(out)], stdout=subprocess.PIPE, env=env)
    try:
        assert holder.stdout.readline().decode().strip() == "held"
        assert main(["prepare", "--root", str(tree.root), "--out", str(out), "--frames", "4", "--size", "16",
                     "--workers", "1", "--no-progress"]) == 1
        _one_error_line(capsys.readouterr().err, str(out), "being written by", f"pid {holder.pid}")
        assert not out.exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The holder was killed: its lock went with it, and the file it left is no obstacle.
    assert main(["prepare", "--root", str(tree.root), "--out", str(out), "--frames", "4", "--size", "16",
                 "--workers", "1", "--no-progress"]) == 0
    assert not (tmp_path / ".cache.tdrag-lock").exists()


def test_a_cache_another_writer_finished_meanwhile_is_not_replaced(tmp_path, capsys, monkeypatch):
    """A writer that takes no lock (an older tdrag) finishes a --size 40 cache while this --size 48
    one decodes: the check just before the rename compares settings, not only ownership."""
    import tdrag.data.decode as decode

    tree = write_dfew_tree(tmp_path / "DFEW", num_clips=5, lengths=4, size=16)
    common = ["prepare", "--root", str(tree.root), "--frames", "4", "--workers", "1", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "other"), "--size", "40"]) == 0
    real = decode.decode_all

    def decode_while_another_finishes(*args, **kwargs):
        shutil.copytree(tmp_path / "other", tmp_path / "cache")
        return real(*args, **kwargs)

    monkeypatch.setattr(decode, "decode_all", decode_while_another_finishes)
    assert main([*common, "--out", str(tmp_path / "cache"), "--size", "48"]) == 1
    _one_error_line(capsys.readouterr().err, str(tmp_path / "cache"), "another cache (size 40", "was written there")
    assert json.loads((tmp_path / "cache" / "manifest.json").read_text())["size"] == 40
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_full_disk_message_gives_the_size_in_readable_units():
    from tdrag.errors import human_size

    assert human_size(3.7e6) == "3.7 MB" and human_size(122_880) == "122.9 kB"
    assert human_size(3 * 2**30) == "3.00 GiB" and human_size(12) == "12 bytes"


def test_overrides_may_stand_anywhere_among_the_options(tiny_cache, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    save_config(tiny_config(tiny_cache, tmp_path / "run"), config)
    # data.crop=0 after --no-progress is read as an override (and refused as a value), not an argument.
    assert main(["train", "--config", str(config), "train.epochs=1", "--no-progress", "data.crop=0"]) == 2
    _one_error_line(capsys.readouterr().err, "data.crop", "at least 1")
    assert not (tmp_path / "run").exists()


def test_a_read_only_previous_set_is_refused_before_anything_moves(tmp_path, capsys, monkeypatch):
    """Found only after the new set is in place, a part that cannot be removed would leave the old
    set half-deleted under a hidden name. (Simulated: the tests may run as root.)"""
    import tdrag.ownership as ownership

    out = tmp_path / "D"
    assert _synth(out) == 0
    before = _tree_snapshot(out)
    locked = out / "synthetic" / "masks"
    real_access = os.access
    monkeypatch.setattr(ownership.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    assert _synth(out, "--seed", "1") == 1
    _one_error_line(capsys.readouterr().err, str(out), "'synthetic/masks' is read-only")
    assert _tree_snapshot(out) == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_predict_killed_among_its_renames_is_finished_by_the_rerun(tiny_run, tmp_path, capsys):
    from tests.video_samples import face_video

    video = face_video(tmp_path / "face.mp4", frames=20, size=96)
    out = tmp_path / "P"
    out.mkdir()
    # What a kill after the first of the three renames leaves: the video, no JSON, the commit note.
    (out / "face_overlay.mp4").write_bytes(b"an overlay")
    (out / ".face.predict-commit").write_text('["face.json", "face_keyframes.png", "face_overlay.mp4"]\n')
    (out / ".predict-face-abcd1234").mkdir()  # its staging folder
    args = ["predict", str(video), "--checkpoint", str(tiny_run), "--out", str(out), "--device", "cpu",
            "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads((out / "face.json").read_text())["format"] == "tdrag-prediction"
    assert (out / "face_overlay.mp4").stat().st_size > 100
    assert sorted(p.name for p in out.iterdir()) == ["face.json", "face_keyframes.png", "face_overlay.mp4"]
    # Without the note, media without their JSON are somebody else's: refused.
    (out / "face.json").unlink()
    assert main(args) == 1
    _one_error_line(capsys.readouterr().err, "face_", "refusing to replace it")
