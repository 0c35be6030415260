"""tdrag.runs.lock: one process at a time in a run directory; a killed holder leaves no lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tdrag.runs.layout import RunPaths
from tdrag.runs.lock import RunBusyError

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from tdrag.runs.layout import RunPaths
with RunPaths(sys.argv[1]).hold("train"):
    print("held", flush=True)
    time.sleep(600)
"""


def _start_holder(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, env=env)
    assert holder.stdout.readline().decode().strip() == "held"
    return holder


def test_a_held_run_dir_refuses_another_process_naming_the_holder(tmp_path):
    paths = RunPaths(tmp_path / "run")
    holder = _start_holder(paths.root)
    try:
        with pytest.raises(RunBusyError) as refused:
            with paths.hold("eval"):
                pytest.fail("entered a run directory another process holds")
        message = str(refused.value)
        assert message.startswith(f"{paths.root}: in use by pid {holder.pid} on {socket.gethostname()} (")
        assert "train in " in message and "\n" not in message  # not a tdrag command line: what it does is said
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The kernel released the lock with the killed process; the file it left is no obstacle.
    assert paths.lock.is_file()
    with paths.hold("train"):
        assert str(os.getpid()) in paths.lock.read_text()


def test_holding_releases_on_exit_and_on_error(tmp_path):
    paths = RunPaths(tmp_path / "run")
    with paths.hold("train"):
        pass
    with pytest.raises(KeyError):
        with paths.hold("train"):
            raise KeyError("boom")
    started = time.time()
    with paths.hold("eval"):
        assert time.time() - started < 5
