"""DDP on CPU with the gloo backend and 2 processes: sharding, gathering, and a torchrun training run."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tdrag import distributed
from tdrag.config import save_config
from tdrag.data.cache import open_cache
from tests.run_fixtures import tiny_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gather_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        info = distributed.current()
        rows = np.arange(11)  # odd: ranks get 6 and 5 rows
        mine = distributed.shard_rows(rows, info)
        # Each rank also sends row 0 again, as a padding sampler would: it must be counted once.
        mine = np.concatenate([mine, [0]])
        merged = distributed.gather_rows({"row": mine, "value": mine * 10}, info)
        np.savez(os.path.join(out_dir, f"rank{rank}.npz"), mine=mine, **merged)
        assert distributed.all_true(rank == 0, torch.device("cpu")) is False
        assert distributed.broadcast_object({"from": rank}) == {"from": 0}
        # BatchNorm statistics differ per rank after DDP training steps; sync_buffers makes rank 0's win.
        norm = torch.nn.BatchNorm1d(3)
        norm.running_mean.fill_(float(rank + 1))
        distributed.sync_buffers(norm)
        assert torch.equal(norm.running_mean, torch.ones(3))
    finally:
        dist.destroy_process_group()


def test_shard_and_gather_two_gloo_ranks(tmp_path):
    mp.spawn(_gather_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    shards = []
    for rank in (0, 1):
        result = np.load(tmp_path / f"rank{rank}.npz")
        np.testing.assert_array_equal(result["row"], np.arange(11))  # every row once, in order
        np.testing.assert_array_equal(result["value"], np.arange(11) * 10)
        shards.append(set(result["mine"][:-1].tolist()))
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == set(range(11))


def test_single_process_helpers_are_no_ops():
    info = distributed.DistInfo()
    assert not info.enabled and info.is_main
    merged = distributed.gather_rows({"row": np.array([3, 1, 3]), "v": np.array([30, 10, 30])}, info)
    assert merged["row"].tolist() == [1, 3] and merged["v"].tolist() == [10, 30]
    assert distributed.all_true(True, torch.device("cpu"))
    assert distributed.broadcast_object(5) == 5


def test_torchrun_two_gloo_processes_train_and_evaluate_every_clip_once(tiny_cache, tmp_path):
    config_path = tmp_path / "tiny.yaml"
    run = tmp_path / "run"
    save_config(tiny_config(tiny_cache, run, epochs=1), config_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "tdrag", "train", "--config", str(config_path), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "gloo" in completed.stderr  # the process group was joined
    # Only rank 0 printed the summary.
    assert completed.stdout.count("report:") == 1

    cache = open_cache(tiny_cache.cache)
    test_ids = sorted(cache.video_ids[r] for r in cache.rows(1, "test"))
    with open(run / "predictions.csv", newline="") as handle:
        ddp_rows = list(csv.DictReader(handle))
    assert sorted(r["video_id"] for r in ddp_rows) == test_ids  # none twice, none missed
    assert not list(run.rglob("*.tmp"))

    # The gathered predictions equal a single-process evaluation of the same checkpoint.
    from tdrag.trainer import evaluate_run

    single = tmp_path / "single"
    import shutil

    shutil.copytree(run, single)
    evaluate_run(single, device="cpu", progress=False)
    with open(single / "predictions.csv", newline="") as handle:
        single_rows = {r["video_id"]: r for r in csv.DictReader(handle)}
    for row in ddp_rows:
        other = single_rows[row["video_id"]]
        assert row["prediction"] == other["prediction"]
        for key in row:
            if key.startswith("prob_"):
                assert float(row[key]) == pytest.approx(float(other[key]), abs=1e-4)
