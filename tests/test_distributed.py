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
    from tdrag.train.evaluate import evaluate_run

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


class _Compiled(torch.nn.Module):
    """Stands in for torch.compile's wrapper: records what was compiled."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def _wrap_and_rng_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    from tdrag.train import fit as trainer
    from tdrag.train import saver

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        info = distributed.current()
        net = torch.nn.Linear(3, 2)
        torch.compile = _Compiled  # the order of wrapping is what is tested, not the compiler
        train, evaluate = trainer.wrap_model(net, True, info, torch.device("cpu"))
        # DDP first, compiled after: the compiled graph keeps DDP's bucketed all-reduce.
        assert isinstance(train, _Compiled) and isinstance(train.inner, torch.nn.parallel.DistributedDataParallel)
        assert train.inner.module is net
        # Evaluation: the compiled bare model (no DDP: ranks hold different numbers of batches).
        assert isinstance(evaluate, _Compiled) and evaluate.inner is net
        plain_train, plain_eval = trainer.wrap_model(net, False, info, torch.device("cpu"))
        assert isinstance(plain_train, torch.nn.parallel.DistributedDataParallel) and plain_eval is net

        # Every rank's RNG states reach the checkpoint, and each rank gets its own back.
        torch.manual_seed(100 + rank)
        states = saver.gather_rng_states(info)
        if rank == 0:
            assert len(states) == 2 and not torch.equal(states[0]["torch"], states[1]["torch"])
        states = distributed.broadcast_object(states)
        torch.manual_seed(7)
        saver.restore_rng({"rng": states[0], "rng_per_rank": states}, info, "ckpt")
        expected = torch.Generator().manual_seed(100 + rank).get_state()
        assert torch.equal(torch.get_rng_state(), expected)
        (torch.rand(1) + 0).numpy().tofile(os.path.join(out_dir, f"draw{rank}.bin"))
    finally:
        dist.destroy_process_group()


def test_compile_wraps_ddp_and_each_rank_restores_its_own_rng(tmp_path):
    mp.spawn(_wrap_and_rng_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    draws = [np.fromfile(tmp_path / f"draw{r}.bin", dtype=np.float32) for r in (0, 1)]
    assert draws[0] != draws[1]  # the ranks' dropout streams stay distinct after a resume


def test_single_process_wrap_compiles_once(monkeypatch):
    from tdrag.train import fit as trainer

    net = torch.nn.Linear(3, 2)
    monkeypatch.setattr(torch, "compile", _Compiled)
    train, evaluate = trainer.wrap_model(net, True, distributed.DistInfo(), torch.device("cpu"))
    assert train is evaluate and train.inner is net
    assert trainer.wrap_model(net, False, distributed.DistInfo(), torch.device("cpu")) == (net, net)
