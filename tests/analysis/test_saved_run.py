"""analysis.internals.map_store / saved_run, and attribute_clips' maps kept on the run: each made
once, saved once, loaded by another opening of the same run and refused by any other."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from analysis.attribution import methods
from analysis.attribution.attribute import attribute, attribute_clips, attribute_run, store_key
from analysis.internals import run as run_module
from analysis.internals.map_store import MapStore
from analysis.internals.run import open_run
from analysis.internals.saved_run import save_run


def counting(monkeypatch, name: str) -> list[int]:
    """Patch attribution method ``name`` to record how many clips each call gets."""
    import functools

    calls: list[int] = []
    original = methods.METHODS[name]

    @functools.wraps(original)  # check_options reads the method's signature
    def counted(model, x, target, **options):
        calls.append(len(x))
        return original(model, x, target, **options)

    monkeypatch.setitem(methods.METHODS, name, counted)
    return calls


def test_a_map_store_keeps_saves_and_loads_maps_by_clip_and_target(tmp_path):
    store = MapStore()
    a, b, c = torch.rand(3, 4, 4), torch.rand(3, 4, 4), torch.rand(3, 4, 4)
    store.put(2, 1, a)
    store.put(np.int64(5), 0, b)
    assert (2, 1) in store and (2, 0) not in store and len(store) == 2
    assert store.get(2, 0) is None and torch.equal(store.get(2, 1), a)
    assert store.missing([(5, 0), (7, 1), (7, 1), (2, 1)]) == [(7, 1)]
    first = store.save_new(tmp_path / "part0.npy")
    assert first == [[2, 1], [5, 0]] and sorted(p.name for p in tmp_path.iterdir()) == ["part0.npy"]
    store.put(9, 3, c)  # saved again: only what is new, in a part of its own
    second = store.save_new(tmp_path / "part1.npy")
    assert second == [[9, 3]] and store.save_new(tmp_path / "part2.npy") == [] and not (tmp_path / "part2.npy").exists()
    loaded = MapStore.load([(tmp_path / "part0.npy", first), (tmp_path / "part1.npy", second)])
    assert sorted(loaded.keys()) == [(2, 1), (5, 0), (9, 3)] and loaded.get(5, 1) is None
    assert torch.equal(loaded.get(5, 0), b) and torch.equal(loaded.get(9, 3), c)
    loaded.put(1, 1, a)  # a loaded store grows in memory: saved alone, or with its loaded maps for a new folder
    assert loaded.save_new(tmp_path / "new.npy") == [[1, 1]]
    assert len(loaded.save_new(tmp_path / "all.npy", everything=True)) == 4
    with pytest.raises(ValueError, match="index lists 1"):
        MapStore.load([(tmp_path / "part0.npy", first[:1])])


def test_attribute_clips_makes_each_map_once(tiny_run, monkeypatch):
    run = open_run(tiny_run, device="cpu", progress=False)
    direct = attribute(run.model, run.inputs([0, 1, 2]), torch.as_tensor(run.predictions[[0, 1, 2]]), "saliency").cpu()
    calls = counting(monkeypatch, "saliency")
    first = attribute_clips(run, [0, 1], "saliency")
    both = attribute_clips(run, [1, 2, 0], "saliency")
    assert calls == [2, 1], "only clip 2 was new"
    assert torch.equal(both[0], first[1]) and torch.equal(both[2], first[0])
    torch.testing.assert_close(both, direct[[1, 2, 0]], rtol=1e-5, atol=1e-7)
    # Another class to explain is another map; a class given by index is the same as by "prediction".
    other = (run.predictions[[0]] + 1) % run.num_classes
    attribute_clips(run, [0], "saliency", target=other)
    attribute_clips(run, [0], "saliency", target=int(run.predictions[0]))
    assert calls == [2, 1, 1]
    # Other options are other maps, kept apart by their key.
    ig = counting(monkeypatch, "integrated_gradients")
    attribute_clips(run, [0], "integrated_gradients", small=True)
    attribute_clips(run, [0], "integrated_gradients")
    attribute_clips(run, [0], "integrated_gradients", small=True)
    assert ig == [1, 1] and store_key("integrated_gradients", {"n_steps": 8}) in run.attributions
    # Options without an exact text form (a tensor baseline) are computed every time, not kept.
    baseline = torch.zeros(1, 3, 1, 1, 1)
    attribute_clips(run, [0], "integrated_gradients", baseline=baseline, n_steps=2)
    attribute_clips(run, [0], "integrated_gradients", baseline=baseline, n_steps=2)
    assert ig == [1, 1, 1, 1]
    assert attribute_clips(run, [], "saliency").shape == (0, *first.shape[1:])


def test_attribute_run_reads_the_cached_pass(tiny_run, monkeypatch):
    run = open_run(tiny_run, device="cpu", progress=False)
    run.inspection
    forwards = []
    monkeypatch.setattr(type(run.model), "inspect", lambda self, x: forwards.append(len(x)))
    result = attribute_run(run, "frame_ablation", positions=[2, 0], targets="label", progress=False)
    assert forwards == []  # probabilities from the inspection; frame ablation calls the model itself
    np.testing.assert_array_equal(result.rows.numpy(), run.rows[[2, 0]])
    torch.testing.assert_close(result.probabilities, run.probabilities[[2, 0]])
    np.testing.assert_array_equal(result.targets.numpy(), run.labels[[2, 0]])
    torch.testing.assert_close(result.maps, attribute_clips(run, [2, 0], "frame_ablation", target="label"))
    assert result.options == {} and result.to_frame().shape == (2, 5)


def test_a_saved_run_is_loaded_instead_of_recomputed(tiny_run, tmp_path, monkeypatch):
    run = open_run(tiny_run, device="cpu", progress=False)
    maps = attribute_clips(run, [0, 3], "integrated_gradients", target="label", small=True)
    folder = save_run(run, tmp_path / "saved")
    assert sorted(p.name for p in folder.iterdir()) == ["inspection.pt", "maps-0-0.npy", "saved_run.json"]
    # Saved again after more maps: a new part with those alone.
    more = attribute_clips(run, [1], "integrated_gradients", target="label", small=True)
    save_run(run, folder)
    assert sorted(p.name for p in folder.glob("maps-*")) == ["maps-0-0.npy", "maps-0-1.npy"]
    with pytest.raises(ValueError, match="another run"):
        save_run(open_run(tiny_run, split="train", device="cpu", progress=False), folder)

    def no_pass(*args, **kw):
        raise AssertionError("the saved inspection should have been loaded")

    monkeypatch.setattr(run_module, "inspect_split", no_pass)
    calls = counting(monkeypatch, "integrated_gradients")
    page = open_run(tiny_run, device="cpu", progress=False, saved=folder)
    for name in ("logits", "hidden_states", "step_logits"):
        torch.testing.assert_close(getattr(page, name), getattr(run, name), rtol=0, atol=0)
    assert page.attention.keys() == run.attention.keys() and np.array_equal(page.inspection.rows, run.rows)
    assert page.inspection.video_ids == run.inspection.video_ids
    np.testing.assert_array_equal(page.predictions, run.predictions)
    assert torch.equal(attribute_clips(page, [3, 0], "integrated_gradients", target="label", small=True), maps[[1, 0]])
    assert torch.equal(attribute_clips(page, [1], "integrated_gradients", target="label", small=True), more)
    assert calls == []


def test_a_saved_run_is_refused_by_another_run(tiny_run, tmp_path):
    folder = save_run(open_run(tiny_run, split="train", device="cpu", progress=False), tmp_path / "saved")
    with pytest.raises(ValueError, match="other clips"):
        open_run(tiny_run, split="train", device="cpu", progress=False, max_clips=1, saved=folder)
    with pytest.raises(ValueError, match="another split"):
        open_run(tiny_run, device="cpu", progress=False, saved=folder)
    with pytest.raises(ValueError, match="no saved run there"):
        open_run(tiny_run, device="cpu", progress=False, saved=tmp_path)
    # A checkpoint written again (another training, the same path) is another model.
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    moved = save_run(open_run(copy, device="cpu", progress=False), tmp_path / "copy_saved")
    checkpoint = open_run(copy, device="cpu", progress=False).checkpoint.path
    stat = os.stat(checkpoint)
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="another version of the checkpoint"):
        open_run(copy, device="cpu", progress=False, saved=moved)
