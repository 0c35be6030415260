"""Dataset and DataLoader over the frame cache; the stratified train/val split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tdrag.data.augment import eval_transform
from tdrag.data.cache import open_cache
from tdrag.data.loader import CacheClipDataset, make_loader, split_train_val, to_device
from tdrag.data.prepare import prepare_cache


@pytest.fixture
def cache(dfew_tree, tmp_path):
    tree = dfew_tree(num_clips=14, lengths=6, size=24)
    return open_cache(prepare_cache(tree.root, tmp_path / "cache", frames=4, size=24, workers=1, progress=False))


def test_dataset_yields_cached_uint8_clips(cache):
    rows = cache.rows(1, "train")
    ds = CacheClipDataset(cache, rows)
    assert len(ds) == len(rows)
    clip, label, row = ds[2]
    assert row == rows[2] and label == cache.labels[row]
    assert clip.dtype == torch.uint8 and clip.shape == (4, 24, 24, 3)
    np.testing.assert_array_equal(clip.numpy(), cache.frames[row])
    # A path works as well as an opened cache.
    assert torch.equal(CacheClipDataset(cache.path, rows)[2][0], clip)
    with pytest.raises(IndexError, match="row 99 out of range"):
        CacheClipDataset(cache, [0, 99])


def test_loader_batches_and_seeded_shuffle(cache):
    rows = cache.rows(2, "train")
    loader = make_loader(cache, rows, batch_size=4, shuffle=False)
    clips, labels, got_rows = next(iter(loader))
    assert clips.shape == (4, 4, 24, 24, 3) and clips.dtype == torch.uint8
    assert labels.dtype == torch.int64 and got_rows.tolist() == rows[:4].tolist()
    assert torch.equal(labels, torch.as_tensor(cache.labels[rows[:4]]))
    x = eval_transform(clips, crop=16)
    assert x.shape == (4, 3, 4, 16, 16)

    def order(seed):
        return torch.cat([b[2] for b in make_loader(cache, rows, 4, shuffle=True, seed=seed)]).tolist()

    assert order(0) == order(0) and order(0) != order(1)
    assert sorted(order(0)) == sorted(rows.tolist())
    assert len(make_loader(cache, rows, 4, shuffle=True, drop_last=True)) == len(rows) // 4


def test_loader_with_worker_process(cache):
    rows = cache.rows(1, "test")
    loader = make_loader(cache, rows, batch_size=2, shuffle=False, num_workers=1)
    assert loader.persistent_workers and loader.pin_memory == torch.cuda.is_available()
    got = torch.cat([b[2] for b in loader]).tolist()
    assert got == rows.tolist()
    clips, labels, _ = to_device(next(iter(loader)), "cpu")
    assert clips.device.type == "cpu"


def test_split_train_val_is_stratified_and_deterministic():
    rows = np.arange(100, 160)
    labels = np.repeat([0, 1, 2, 3], [30, 20, 8, 2])
    train, val = split_train_val(labels, rows, 0.25, seed=0)
    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.union1d(train, val), rows)
    label_of = dict(zip(rows, labels))
    held = np.bincount([label_of[r] for r in val], minlength=4)
    assert held.tolist() == [round(30 * 0.25), round(20 * 0.25), round(8 * 0.25), 1]
    again = split_train_val(labels, rows, 0.25, seed=0)
    assert np.array_equal(again[1], val)
    assert not np.array_equal(split_train_val(labels, rows, 0.25, seed=1)[1], val)
    train0, val0 = split_train_val(labels, rows, 0.0)
    assert val0.size == 0 and np.array_equal(train0, rows)
    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        split_train_val(labels, rows, 1.0)
    with pytest.raises(ValueError, match="59 entries for 60 rows"):
        split_train_val(labels[:-1], rows, 0.2)


@pytest.mark.parametrize("workers", [0, 2])
def test_batched_reads_equal_per_clip_reads_and_recycled_buffers_stay_intact(tiny_cache, workers):
    from tdrag.data.cache import open_cache
    from tdrag.data.loader import CacheClipDataset, make_loader

    cache = open_cache(tiny_cache.cache)
    rows = cache.rows(1, "train")
    dataset = CacheClipDataset(cache, rows)
    one_by_one = torch.utils.data.default_collate([dataset[i] for i in (3, 0, 5)])
    batched = dataset.__getitems__([3, 0, 5])
    for a, b in zip(batched, one_by_one):
        assert torch.equal(a, b)
    loader = make_loader(cache, rows, batch_size=4, shuffle=True, num_workers=workers, seed=1)
    kept = list(loader)  # every batch kept alive while later ones are read: no buffer reused under them
    for clips, labels, batch_rows in kept:
        assert torch.equal(clips, torch.from_numpy(np.array(cache.frames[batch_rows.numpy()])))
        assert torch.equal(labels, torch.from_numpy(cache.labels[batch_rows.numpy()]))
    assert sorted(torch.cat([b[2] for b in kept]).tolist()) == sorted(rows.tolist())
