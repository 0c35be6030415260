"""tdrag.runs.checkpoints: atomic save, safe load, refusal of corrupt/foreign files, exact RNG restore."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from tdrag.config import Config, config_to_dict
from tdrag.runs import checkpoints
from tdrag.runs.checkpoints import CheckpointError


class Foreign:
    """A class the safe loader has never heard of (stands for someone else's pickle)."""

    def __init__(self):
        self.payload = torch.zeros(2)


def _state():
    model = torch.nn.Linear(3, 2)
    return {"config": config_to_dict(Config()), "model": model.state_dict(), "epoch": 3, "history": [{"epoch": 1}]}


def test_round_trip(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    state = _state()
    checkpoints.save_checkpoint(path, state)
    loaded = checkpoints.load_checkpoint(path)
    assert loaded["format"] == checkpoints.FORMAT
    assert loaded["epoch"] == 3 and loaded["history"] == [{"epoch": 1}]
    for key, value in state["model"].items():
        assert torch.equal(loaded["model"][key], value)
    assert checkpoints.checkpoint_config(loaded) == Config()
    # No temporary files left beside it.
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoints.save_checkpoint(path, _state())
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save_checkpoint(path, _state())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_file_names_path(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt: checkpoint not found"):
        checkpoints.load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "text"])
def test_corrupt_file_is_refused_naming_path(tmp_path, damage):
    path = tmp_path / "bad.pt"
    checkpoints.save_checkpoint(path, _state())
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    elif damage == "text":
        path.write_text("this is a text file, not a checkpoint\n")
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        checkpoints.load_checkpoint(path)


def test_foreign_pickle_via_torch_save_is_refused(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"format": checkpoints.FORMAT, "version": 1, "config": {}, "model": Foreign()}, path)
    with pytest.raises(CheckpointError, match=r"foreign\.pt: refused"):
        checkpoints.load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump(Foreign(), handle)
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        checkpoints.load_checkpoint(path)


def test_plain_state_dict_is_not_a_tdrag_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"weights\.pt: not a tdrag checkpoint"):
        checkpoints.load_checkpoint(path)


def test_rng_state_restores_every_generator_exactly(tmp_path):
    generator = torch.Generator().manual_seed(5)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leave a cached gaussian around
    base = _state()  # builds a layer, which draws from torch's RNG: do it before capturing
    state = checkpoints.rng_state({"augment": generator})
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3), torch.rand(2, generator=generator))
    # Survives a save/load through the safe loader.
    checkpoints.save_checkpoint(tmp_path / "r.pt", {**base, "rng": state})
    state = checkpoints.load_checkpoint(tmp_path / "r.pt")["rng"]
    random.seed(10)
    np.random.seed(20)
    torch.manual_seed(30)
    generator.manual_seed(40)
    checkpoints.set_rng_state(state, {"augment": generator})
    got = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3), torch.rand(2, generator=generator))
    assert got[0] == expected[0] and got[1] == expected[1] and got[2] == expected[2]
    assert torch.equal(got[3], expected[3]) and torch.equal(got[4], expected[4])


def test_unwrap_model_removes_wrappers():
    model = torch.nn.Linear(2, 2)
    assert checkpoints.unwrap_model(torch.nn.DataParallel(model)) is model
    assert checkpoints.unwrap_model(model) is model


def test_analysis_never_defaults_to_a_checkpoint_chosen_on_the_test_fold(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(CheckpointError, match="no checkpoints/best.pt"):
        checkpoints.resolve_checkpoint(tmp_path)
    checkpoints.save_checkpoint(tmp_path / "checkpoints" / "last.pt", {**_state(), "epoch": 9})
    assert checkpoints.resolve_checkpoint(tmp_path).name == "last.pt"
    # best.pt chosen on the test fold (val_fraction = 0): optimistic, not the default.
    on_test = {**_state(), "epoch": 4, "best": {"epoch": 4, "metric": "test_war", "value": 0.5}}
    checkpoints.save_checkpoint(tmp_path / "checkpoints" / "best.pt", on_test)
    choice = checkpoints.select_checkpoint(tmp_path)
    assert choice.name == "last" and choice.epoch == 9 and "chosen on the test fold" in choice.reason
    assert checkpoints.select_checkpoint(tmp_path, which="best").selection == "test"
    # best.pt chosen on held-out training clips: the default.
    on_val = {**_state(), "epoch": 6, "best": {"epoch": 6, "metric": "val_war", "value": 0.5}}
    checkpoints.save_checkpoint(tmp_path / "checkpoints" / "best.pt", on_val)
    choice = checkpoints.select_checkpoint(tmp_path)
    assert (choice.name, choice.epoch, choice.selection) == ("best", 6, "val")
    assert "validation split" in choice.reason
    assert checkpoints.select_checkpoint(tmp_path, which="last").name == "last"
    # Only a test-chosen best.pt left: used, and said to be optimistic.
    (tmp_path / "checkpoints" / "last.pt").unlink()
    checkpoints.save_checkpoint(tmp_path / "checkpoints" / "best.pt", on_test)
    choice = checkpoints.select_checkpoint(tmp_path)
    assert choice.name == "best" and "optimistic" in choice.reason


def test_class_names_are_read_back_from_the_checkpoint(tmp_path):
    from tdrag.config import replace
    from tdrag.data.labels import MAFW_CLASSES

    mafw = replace(Config(), data={"dataset": "mafw"}, model={"num_classes": 11})
    stored = {"config": config_to_dict(mafw), "model": {}, "class_names": ["a", "b"]}
    assert checkpoints.checkpoint_class_names(stored) == ("a", "b")
    # Written before the names were stored: the classes of the dataset the config names, never DFEW's.
    older = {"config": config_to_dict(mafw), "model": {}}
    assert checkpoints.checkpoint_class_names(older) == tuple(MAFW_CLASSES)
    odd = {"config": config_to_dict(replace(mafw, model={"num_classes": 4})), "model": {}}
    with pytest.raises(CheckpointError, match="4 classes, data.dataset 'mafw' has 11"):
        checkpoints.checkpoint_class_names(odd, tmp_path / "x.pt")
