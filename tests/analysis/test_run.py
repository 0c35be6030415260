"""analysis.internals.run over a tiny cache written here, with a real tiny TDRAG model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from analysis.internals.run import RunNotFound, inspect_split, open_run
from tdrag.config import ConfigError
from tdrag.data import cache as cache_module
from tdrag.data.augment import eval_transform
from tdrag.data.labels import DFEW_CLASSES
from tdrag.models.registry import build_model

T, S, CROP = 8, 36, 32


def tiny_cache(root) -> cache_module.ClipCache:
    """A finished cache of 10 random clips (T=8, S=36) in tdrag's on-disk format, fold 1 only."""
    rng = np.random.default_rng(0)
    n = 10
    path = root / "cache"
    path.mkdir()
    rng.integers(0, 256, size=(n, T, S, S, 3), dtype=np.uint8).tofile(path / cache_module.FRAMES_FILE)
    index = [
        {"video_id": f"{i + 1:05d}", "label": i % 7, "source_frames": list(range(T)), "num_source_frames": T}
        for i in range(n)
    ]
    (path / cache_module.INDEX_FILE).write_text(json.dumps(index))
    manifest = {
        "format": cache_module.FORMAT_VERSION,
        "classes": list(DFEW_CLASSES),
        "shape": [n, T, S, S, 3],
        "dtype": "uint8",
        "frames": T,
        "size": S,
        "keyframes": "uniform",
        "folds": {"1": {"train": list(range(6)), "test": list(range(6, n))}},
        "skipped": [],
        "complete": True,
    }
    (path / cache_module.MANIFEST_FILE).write_text(json.dumps(manifest))
    return cache_module.open_cache(path)


def tiny_model(name: str = "tdrag") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, width=8, gru_hidden=16).eval()


def test_inspect_split_collects_everything_in_row_order(tmp_path):
    cache = tiny_cache(tmp_path)
    model = tiny_model()
    rows = np.array([9, 2, 5, 7, 0])  # not sorted: the order must be kept
    result = inspect_split(model, cache, rows, crop=CROP, batch_size=2, progress=False)
    assert len(result) == 5
    assert result.video_ids == [f"{r + 1:05d}" for r in rows]
    np.testing.assert_array_equal(result.rows, rows)
    np.testing.assert_array_equal(result.labels, cache.labels[rows])
    assert result.logits.shape == (5, 7)
    assert set(result.attention) == {"layer2", "layer3", "layer4"}
    # Attention stays at stage resolution (bounded memory): layer2 halves space twice from 32.
    assert result.attention["layer2"].shape == (5, 1, T // 2, CROP // 4, CROP // 4)
    assert result.hidden_states.shape == (5, T // 2, 16)
    assert result.step_logits.shape == (5, T // 2, 7)
    torch.testing.assert_close(result.step_logits[:, -1], result.logits)
    for t in (result.logits, result.hidden_states, *result.attention.values()):
        assert t.dtype == torch.float32 and not t.requires_grad and torch.isfinite(t).all()
    # The same clips fed by hand give the same logits.
    with torch.no_grad():
        direct = model(eval_transform(torch.from_numpy(np.array(cache.frames[rows])), crop=CROP))
    torch.testing.assert_close(result.logits, direct, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.predictions, direct.argmax(1).numpy())


def test_inspect_split_without_attention_or_gru(tmp_path):
    cache = tiny_cache(tmp_path)
    rows = cache.rows(1, "test")
    result = inspect_split(tiny_model("tdrag_no_gru"), cache, rows, crop=CROP, batch_size=4, progress=False)
    assert result.hidden_states is None and result.step_logits is None
    assert result.attention  # no_gru keeps attention
    result = inspect_split(tiny_model(), cache, rows, crop=CROP, keep_attention=False, progress=False)
    assert result.attention == {} and result.hidden_states is not None
    with pytest.raises(ValueError, match="no rows"):
        inspect_split(tiny_model(), cache, [], crop=CROP, progress=False)


def save_run(tmp_path, cache, model, best_metric: str | None = "val_war", last: bool = True,
             val_fraction: float = 0.0, step_loss: str = "last", causal_time: bool = False):
    """A run dir for ``model`` on ``cache`` with best.pt (chosen on ``best_metric``) and/or last.pt."""
    from tdrag.config import Config, DataConfig, HeadConfig, ModelConfig, TrainConfig, config_to_dict
    from tdrag.runs.checkpoints import save_checkpoint

    config = Config(data=DataConfig(cache=str(cache.path), fold=1, frames=T, size=S, crop=CROP, keyframes="uniform",
                                    val_fraction=val_fraction),
                    model=ModelConfig(name="tdrag", width=8, head=HeadConfig(hidden=16), causal_time=causal_time),
                    train=TrainConfig(step_loss=step_loss))
    run = tmp_path / "run"
    state = {"config": config_to_dict(config), "model": model.state_dict()}
    if best_metric is not None:
        save_checkpoint(run / "checkpoints" / "best.pt", {**state, "epoch": 3, "best": {"metric": best_metric}})
    if last:
        save_checkpoint(run / "checkpoints" / "last.pt", {**state, "epoch": 5})
    return run


def test_open_run_holds_one_cached_inspection_that_every_view_reuses(tmp_path, monkeypatch):
    from tdrag.models.inspection import upsample_attention

    cache = tiny_cache(tmp_path)
    model = tiny_model()
    run = open_run(save_run(tmp_path, cache, model), device="cpu", batch_size=3, progress=False)
    np.testing.assert_array_equal(run.rows, cache.rows(1, "test"))
    assert run.class_names == tuple(cache.class_names) and len(run) == 4
    assert run.checkpoint.name == "best" and "validation" in run.checkpoint.reason
    assert run.checkpoint.reason in run.describe()
    calls = []
    original = type(run.model).inspect
    monkeypatch.setattr(type(run.model), "inspect", lambda self, x: calls.append(len(x)) or original(self, x))
    logits = run.logits
    _ = run.probabilities, run.predictions, run.attention, run.hidden_states, run.step_logits
    _ = run.attention_maps([0, 1]), run.most_confident(int(run.labels[0]))
    assert sum(calls) == len(run), "the split is inspected once, in batches, and then reused"
    # Inputs are what was inspected; display frames are the cache's uint8 crop, not de-normalised.
    x = run.inputs([0, 2])
    assert x.shape == (2, 3, T, CROP, CROP)
    with torch.no_grad():
        torch.testing.assert_close(logits[[0, 2]], model(x), rtol=1e-4, atol=1e-5)
    frames = run.frames([0, 2])
    off = (S - CROP) // 2
    assert frames.dtype == np.uint8 and frames.shape == (2, T, CROP, CROP, 3)
    np.testing.assert_array_equal(frames, cache.frames[run.rows[[0, 2]]][:, :, off : off + CROP, off : off + CROP])
    # Frame-size attention is upsample_attention of the cached stage maps.
    maps = run.attention_maps([1])
    for stage, stage_maps in run.attention.items():
        torch.testing.assert_close(maps[stage], upsample_attention(stage_maps[[1]], (T, CROP, CROP)))
    # What the step readouts mean follows this run's model and step loss (not causal, the default
    # mean readout, trained on the clip's logits only).
    assert run.step_readout_meaning().startswith("Not causal") and "their average" in run.step_readout_meaning()
    assert run.step_readout_meaning() in run.describe()


def test_a_run_for_another_thread_shares_the_pass_not_the_model_or_the_maps(tmp_path):
    run = open_run(save_run(tmp_path, tiny_cache(tmp_path), tiny_model()), device="cpu", progress=False)
    run.attributions["made here"] = object()
    worker = run.for_another_thread()
    assert worker.inspection is run.inspection and np.array_equal(worker.rows, run.rows)
    assert worker.model is not run.model and worker.attributions == {} and "made here" in run.attributions
    assert all(torch.equal(a, b) for a, b in zip(worker.model.state_dict().values(), run.model.state_dict().values()))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(worker.model.parameters(), run.model.parameters()))


def test_the_step_readout_meaning_is_the_runs_own(tmp_path):
    cache = tiny_cache(tmp_path)
    torch.manual_seed(0)
    causal = build_model("tdrag", width=8, gru_hidden=16, causal_time=True)
    run = open_run(save_run(tmp_path, cache, causal, step_loss="mean", causal_time=True), device="cpu", progress=False)
    assert run.step_readout_meaning().startswith("Causal time") and "trained predictions" in run.step_readout_meaning()


def test_open_run_never_defaults_to_a_checkpoint_chosen_on_the_test_fold(tmp_path):
    cache = tiny_cache(tmp_path)
    run = open_run(save_run(tmp_path, cache, tiny_model(), best_metric="test_war"), device="cpu", progress=False)
    assert run.checkpoint.name == "last" and "test fold" in run.checkpoint.reason
    best = open_run(tmp_path / "run", device="cpu", checkpoint="best", progress=False)
    assert best.checkpoint.name == "best" and "optimistic" in best.checkpoint.reason


def test_open_run_limits_clips_per_class_and_refuses_missing_runs(tmp_path):
    cache = tiny_cache(tmp_path)
    run_dir = save_run(tmp_path, cache, tiny_model())
    run = open_run(run_dir, split="train", device="cpu", max_clips=1, progress=False)
    assert len(run) == len(set(cache.labels[cache.rows(1, "train")].tolist()))
    assert sorted(run.labels.tolist()) == sorted(set(run.labels.tolist()))
    with pytest.raises(RunNotFound, match="DEMO = True"):
        open_run(tmp_path / "nothing_here", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFound, match="tdrag train"):
        open_run(tmp_path / "empty", device="cpu")
    assert not (tmp_path / "nothing_here").exists() and list((tmp_path / "empty").iterdir()) == []


def test_open_run_opens_the_runs_own_splits_and_checks_its_cache(tmp_path):
    """The rows are load_run_data's: the training rows without the validation clips, the clips
    best.pt was chosen on, the test fold; a cache that does not fit the run is refused."""
    from tdrag.runs.checkpoints import checkpoint_config, load_checkpoint
    from tdrag.train.data import load_run_data

    cache = tiny_cache(tmp_path)
    manifest = json.loads((cache.path / cache_module.MANIFEST_FILE).read_text())
    # Two training clips of classes 0 and 1, so that the validation split holds one of each.
    manifest["folds"]["1"] = {"train": [0, 1, 2, 3, 4, 5, 7, 8], "test": [6, 9]}
    (cache.path / cache_module.MANIFEST_FILE).write_text(json.dumps(manifest))
    cache = cache_module.open_cache(cache.path)
    run_dir = save_run(tmp_path, cache, tiny_model(), val_fraction=0.34)
    data = load_run_data(checkpoint_config(load_checkpoint(run_dir / "checkpoints" / "best.pt")))
    opened = {split: open_run(run_dir, split=split, device="cpu", progress=False) for split in ("train", "val", "test")}
    for split, rows in (("train", data.train_rows), ("val", data.val_rows), ("test", data.test_rows)):
        np.testing.assert_array_equal(opened[split].rows, rows)
    assert len(opened["val"]) > 0 and not set(opened["val"].rows) & set(opened["train"].rows)
    assert set(opened["val"].rows) | set(opened["train"].rows) == set(cache.rows(1, "train"))
    with pytest.raises(ConfigError, match="no validation clips"):
        open_run(save_run(tmp_path / "other", cache, tiny_model()), split="val", device="cpu", progress=False)
    # A cache rebuilt with other keyframes than the run trained on: named, not silently used.
    (cache.path / cache_module.MANIFEST_FILE).write_text(json.dumps({**manifest, "keyframes": "redundancy"}))
    with pytest.raises(ConfigError, match="data.keyframes"):
        open_run(run_dir, device="cpu", progress=False)


@pytest.mark.gpu
def test_inspect_split_on_cuda_returns_cpu_float32(tmp_path):
    cache = tiny_cache(tmp_path)
    rows = cache.rows(1, "test")
    cpu = inspect_split(tiny_model(), cache, rows, crop=CROP, progress=False)
    for amp in (False, True):
        result = inspect_split(tiny_model().cuda(), cache, rows, crop=CROP, device="cuda", amp=amp, progress=False)
        for t in (result.logits, result.hidden_states, result.step_logits, *result.attention.values()):
            assert t.device.type == "cpu" and t.dtype == torch.float32 and torch.isfinite(t).all()
        assert result.attention["layer2"].shape == cpu.attention["layer2"].shape
        if not amp:  # TF32 convolutions on CUDA: close, not equal
            torch.testing.assert_close(result.logits, cpu.logits, rtol=1e-2, atol=1e-2)
