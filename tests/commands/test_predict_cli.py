"""`tdrag predict`: good and bad videos in one call, exit codes, one line per failure, clean --out."""

from __future__ import annotations

import json

import pytest

from tdrag.cli import main
from tests.video_samples import face_video, noise_video, text_file, tiny_checkpoint, truncated_copy


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    face = face_video(root / "astronaut.mp4", frames=40, size=128)
    return {
        "root": root,
        "face": face,
        "checkpoint": tiny_checkpoint(root / "tiny.pt"),
        "noise": noise_video(root / "noise.mp4"),
        "truncated": truncated_copy(face, root / "truncated.mp4", 0.5),
        "text": text_file(root / "notes.mp4"),
        "missing": root / "missing.mp4",
    }


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_bad_inputs_fail_one_line_each_and_the_good_one_is_written(media, tmp_path, capsys):
    out = tmp_path / "out"
    bad = ["noise", "truncated", "text", "missing"]
    videos = [str(media[k]) for k in ["noise", "face", "truncated", "text", "missing"]]
    code = main(["predict", *videos, "--checkpoint", str(media["checkpoint"]), "--out", str(out), "--window", "1"])
    captured = capsys.readouterr()
    assert code == 1
    errors = error_lines(captured.err)
    assert len(errors) == len(bad)
    reasons = {
        "noise": "no face detected",
        "truncated": "truncated",
        "text": "not a video",
        "missing": "file not found",
    }
    for key in bad:
        (line,) = [e for e in errors if str(media[key]) in e]
        assert reasons[key] in line
    # Only the face video's outputs, complete, and no staging folders or temporary files.
    written = sorted(p.name for p in out.iterdir())
    assert written == ["astronaut.json", "astronaut_keyframes.png", "astronaut_overlay.mp4"]
    data = json.loads((out / "astronaut.json").read_text())
    assert data["video"] == str(media["face"]) and data["face"]["coverage"] >= 0.8
    assert len(data["windows"]) == 2  # 40 frames at 25 fps = 1.6 s in windows of about 1 s
    assert "1 of 5 video(s) predicted" in captured.out and "4 failed" in captured.out


def test_error_lines_stand_on_their_own_lines_in_a_log(media, tmp_path, capsys):
    """A captured stderr (a log file, CI) gets no progress bar to glue an error line to: split on
    newlines only, as a log viewer does, every error is a whole line of its own."""
    folder = tmp_path / "adir.mp4"
    folder.mkdir()
    videos = [str(media["face"]), str(folder), str(media["text"]), str(media["face"])]
    assert main(["predict", *videos, "--checkpoint", str(media["checkpoint"]), "--out", str(tmp_path / "out"),
                 "--window", "0"]) == 1
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.split("\n") if "error:" in line]
    assert lines == [f"error: {folder}: is a directory, not a video file",
                     f"error: {media['text']}: not a video file (it contains text)"]


def test_on_a_terminal_the_bar_is_cleared_before_each_error_line(media, tmp_path):
    """On a terminal the bar is drawn; each error line still starts at the left edge, after the
    carriage return that clears the bar."""
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios
    from pathlib import Path

    folder = tmp_path / "adir.mp4"
    folder.mkdir()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "tdrag", "predict", str(folder), str(media["face"]), str(media["missing"]),
               "--checkpoint", str(media["checkpoint"]), "--out", str(tmp_path / "out"), "--window", "0"]
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        received += chunk
    assert process.wait(timeout=300) == 1
    shown = [line.split("\r")[-1] for line in received.decode().replace("\r\n", "\n").split("\n")]
    assert "videos:" in received.decode(), "a terminal gets the progress bar"
    errors = [line for line in shown if "error:" in line]
    assert errors == [f"error: {folder}: is a directory, not a video file",
                      f"error: {media['missing']}: file not found"]


def test_all_good_exits_zero_and_names_are_unique(media, tmp_path, capsys):
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = other / media["face"].name
    copy.write_bytes(media["face"].read_bytes())
    out = tmp_path / "out"
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "best.pt").write_bytes(media["checkpoint"].read_bytes())
    args = ["predict", str(media["face"]), str(copy), "--checkpoint", str(run_dir), "--out", str(out), "--window", "0"]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert error_lines(captured.err) == []
    names = sorted(p.name for p in out.iterdir())
    suffixes = (".json", "_keyframes.png", "_overlay.mp4")
    assert names == sorted(f"{stem}{suffix}" for stem in ("astronaut", "astronaut_2") for suffix in suffixes)
    first, second = (json.loads((out / f"{s}.json").read_text()) for s in ("astronaut", "astronaut_2"))
    assert second["video"] == str(copy) and len(first["windows"]) == 1
    assert first["checkpoint"] == str(run_dir / "checkpoints" / "best.pt")
    assert first["probabilities"] == pytest.approx(second["probabilities"])
    # It says which checkpoint it used and why (here the only one left in the run dir).
    assert "checkpoint: checkpoints/best.pt" in captured.err and "the only checkpoint left" in captured.err


def test_an_eleven_class_mafw_checkpoint_predicts_mafw_names(media, tmp_path, capsys):
    from tdrag.data.labels import MAFW_CLASSES

    checkpoint = tiny_checkpoint(tmp_path / "mafw.pt", dataset="mafw", class_names=MAFW_CLASSES)
    out = tmp_path / "out"
    assert main(["predict", str(media["face"]), "--checkpoint", str(checkpoint), "--out", str(out)]) == 0
    data = json.loads((out / "astronaut.json").read_text())
    assert data["classes"] == list(MAFW_CLASSES) and list(data["probabilities"]) == list(MAFW_CLASSES)
    assert data["top_class"] in MAFW_CLASSES and all(w["top_class"] in MAFW_CLASSES for w in data["windows"])
    # The names are the checkpoint's own, read back (here spelled otherwise than the reader's list).
    titled = tuple(name.title() for name in MAFW_CLASSES)
    checkpoint = tiny_checkpoint(tmp_path / "titled.pt", dataset="mafw", class_names=titled)
    assert main(["predict", str(media["face"]), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "astronaut.json").read_text())["classes"] == list(titled)


def test_bad_checkpoint_is_one_clear_error(media, tmp_path, capsys):
    broken = text_file(tmp_path / "broken.pt")
    code = main(["predict", str(media["face"]), "--checkpoint", str(broken), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2
    (line,) = error_lines(captured.err)
    assert str(broken) in line
    assert not (tmp_path / "out").exists()


def test_help_lists_predict(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--checkpoint" in capsys.readouterr().out


@pytest.mark.parametrize("device", ["nonsense", "cuda"])
def test_unusable_device_is_one_clear_error(media, tmp_path, capsys, device):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code = main(["predict", str(media["face"]), "--checkpoint", str(media["checkpoint"]),
                 "--out", str(tmp_path / "out"), "--device", device])
    (line,) = error_lines(capsys.readouterr().err)
    assert code == 2 and f"--device {device}" in line
    assert not (tmp_path / "out").exists()


def test_predict_replaces_its_own_outputs_but_never_a_users_file(media, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["predict", str(media["face"]), "--checkpoint", str(media["checkpoint"]), "--out", str(out), "--window", "0"]
    assert main(args) == 0
    first = (out / "astronaut.json").read_text()
    assert json.loads(first)["format"] == "tdrag-prediction"
    assert main(args) == 0  # its own earlier prediction: replaced
    (out / "astronaut.json").write_text('{"my": "notes"}')
    capsys.readouterr()
    assert main(args) == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "astronaut.json" in lines[0] and "not a tdrag prediction" in lines[0]
    assert (out / "astronaut.json").read_text() == '{"my": "notes"}'
