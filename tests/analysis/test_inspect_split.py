"""analysis.inspect_split over a tiny cache written here, with a real tiny TDRAG model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from analysis.inspect_split import inspect_batches, inspect_split
from tdrag.data import cache as cache_module
from tdrag.data.labels import DFEW_CLASSES
from tdrag.data.loader import eval_transform
from tdrag.models import build_model

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


def test_inspect_batches_accepts_prepared_batches():
    model = tiny_model()
    batches = [(torch.randn(2, 3, T, CROP, CROP), [0, 3], ["a", "b"], [10, 11]),
               (torch.randn(1, 3, T, CROP, CROP), [6], ["c"], [12])]
    result = inspect_batches(model, batches, progress=False)
    assert result.video_ids == ["a", "b", "c"] and result.labels.tolist() == [0, 3, 6]
    assert result.logits.shape == (3, 7)
    with pytest.raises(ValueError, match="no batches"):
        inspect_batches(model, [], progress=False)


def test_inspect_run_loads_the_checkpoint_and_its_cache(tmp_path):
    from analysis.inspect_split import clip_inputs, inspect_run
    from tdrag.checkpoints import save_checkpoint
    from tdrag.config import Config, DataConfig, ModelConfig, config_to_dict

    cache = tiny_cache(tmp_path)
    model = tiny_model()
    config = Config(data=DataConfig(cache=str(cache.path), fold=1, frames=T, size=S, crop=CROP),
                    model=ModelConfig(name="tdrag", width=8, gru_hidden=16))
    save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt",
                    {"config": config_to_dict(config), "model": model.state_dict()})
    opened = inspect_run(tmp_path / "run", "test", batch_size=3, progress=False)
    np.testing.assert_array_equal(opened.inspection.rows, cache.rows(1, "test"))
    rows = opened.inspection.rows[:2]
    x = opened.inputs(rows)
    assert x.shape == (2, 3, T, CROP, CROP)
    torch.testing.assert_close(x, clip_inputs(cache, rows, CROP))
    with torch.no_grad():
        torch.testing.assert_close(opened.inspection.logits[:2], model(x), rtol=1e-4, atol=1e-5)


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
