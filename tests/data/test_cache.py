"""Frame cache: round trip, manifest, re-runs, bad clips, interrupted runs, the CLI."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tdrag.data.decode as decode_mod
from tdrag.cli import main as cli_main
from tdrag.data.cache import CacheError, open_cache
from tdrag.data.dfew import ClipError, DFEWError
from tdrag.data.keyframes import select_keyframes
from tdrag.data.labels import DFEW_CLASSES
from tdrag.data.prepare import prepare_cache
from tdrag.errors import OutputError


def source_keyframe(tree, video_id, n, size):
    """What the cache must hold for frame index n (0-based) of a clip: imread, INTER_AREA, RGB."""
    image = cv2.imread(str(tree.clip_root / video_id / f"{n + 1}.jpg"))
    if image.shape[0] != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture
def caches(tmp_path):
    """A folder for caches only, apart from the DFEW trees, so tests can list what is left."""
    path = tmp_path / "caches"
    path.mkdir()
    return path


@pytest.mark.parametrize("method", ["redundancy", "uniform"])
def test_round_trip(dfew_tree, caches, method):
    tree = dfew_tree(num_clips=7, lengths=[12, 20, 9, 16, 30, 5, 12], size=40)
    out = prepare_cache(tree.root, caches / "cache", frames=8, size=24, keyframes=method, workers=1, progress=False)
    cache = open_cache(out)
    assert cache.frames.shape == (7, 8, 24, 24, 3) and cache.frames.dtype == np.uint8
    assert cache.video_ids == sorted(tree.ids)
    for row, entry in enumerate(cache.index):
        vid = entry["video_id"]
        assert entry["label"] == tree.labels[vid] == cache.labels[row]
        assert entry["num_source_frames"] == tree.lengths[vid]
        idx = np.asarray(entry["source_frames"])
        assert len(idx) == 8 and np.all(np.diff(idx) >= 0) and idx.min() >= 0 and idx.max() < tree.lengths[vid]
        # The indices are the keyframe module's choice on the decoded clip.
        clip = np.stack([source_keyframe(tree, vid, n, 40) for n in range(tree.lengths[vid])])
        np.testing.assert_array_equal(idx, select_keyframes(clip, 8, method))
        for t, n in enumerate(idx):
            np.testing.assert_array_equal(cache.frames[row, t], source_keyframe(tree, vid, int(n), 24))
    assert not cache.frames.flags.writeable


def test_manifest_counts_and_folds(dfew_tree, caches):
    tree = dfew_tree(num_clips=12, lengths=4, size=16)
    cache = open_cache(prepare_cache(tree.root, caches / "c", frames=4, size=16, keyframes="uniform", workers=1, progress=False))
    m = cache.manifest
    assert m["complete"] is True and m["shape"] == [12, 4, 16, 16, 3]
    assert (m["frames"], m["size"], m["keyframes"]) == (4, 16, "uniform")
    assert m["skipped"] == []
    for k in range(1, 6):
        test_ids = {cache.video_ids[r] for r in cache.rows(k, "test")}
        train_ids = {cache.video_ids[r] for r in cache.rows(k, "train")}
        assert test_ids == {v for v in tree.ids if tree.test_fold[v] == k}
        assert train_ids == set(tree.ids) - test_ids
        for split, ids in (("train", train_ids), ("test", test_ids)):
            counts = m["counts"][str(k)][split]
            assert counts["clips"] == len(ids)
            expected = {name: sum(tree.labels[v] == c for v in ids) for c, name in enumerate(DFEW_CLASSES)}
            assert counts["per_class"] == expected
    assert sum(m["counts_total"].values()) == 12
    with pytest.raises(CacheError, match="fold 6 is not in the cache"):
        cache.rows(6, "train")


def test_second_run_is_a_no_op_and_other_settings_refused(dfew_tree, caches, caplog):
    tree = dfew_tree(num_clips=5, lengths=4, size=16)
    out = prepare_cache(tree.root, caches / "c", frames=4, size=16, workers=1, progress=False)
    stamp = (out / "frames.u8").stat().st_mtime_ns, (out / "manifest.json").read_text()
    caplog.set_level("INFO")
    prepare_cache(tree.root, out, frames=4, size=16, workers=1, progress=False)
    assert "nothing to do" in caplog.text
    assert ((out / "frames.u8").stat().st_mtime_ns, (out / "manifest.json").read_text()) == stamp
    with pytest.raises(CacheError, match=r"size: 16 -> 12.*another out or overwrite=True"):
        prepare_cache(tree.root, out, frames=4, size=12, workers=1, progress=False)
    out = prepare_cache(tree.root, out, frames=4, size=12, workers=1, progress=False, overwrite=True)
    assert open_cache(out).shape == (5, 4, 12, 12, 3)
    assert [p.name for p in caches.iterdir()] == ["c"]


def test_refuses_a_foreign_folder(dfew_tree, caches):
    tree = dfew_tree(num_clips=5, lengths=4, size=16)
    out = caches / "c"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=r"holds 'mine.txt', which tdrag did not write"):
            prepare_cache(tree.root, out, frames=4, size=16, workers=1, progress=False, overwrite=overwrite)
    assert (out / "mine.txt").read_text() == "keep me"


def test_bad_clips_skipped_and_listed(dfew_tree, caches):
    tree = dfew_tree(num_clips=10, lengths=6, size=16)
    (tree.clip_root / "00003" / "2.jpg").write_bytes(b"garbage")
    shutil.rmtree(tree.clip_root / "00005")
    out = prepare_cache(tree.root, caches / "c", frames=4, size=16, workers=1, progress=False)
    cache = open_cache(out)
    assert "00003" not in cache.video_ids and "00005" not in cache.video_ids and len(cache) == 8
    skipped = {s["video_id"]: s for s in cache.manifest["skipped"]}
    assert sorted(skipped) == ["00003", "00005"]  # the missing folder is listed once, not once per CSV
    assert str(tree.clip_root / "00003" / "2.jpg") in skipped["00003"]["reason"]
    assert "does not decode" in skipped["00003"]["reason"]
    assert skipped["00005"]["path"] == str(tree.clip_root / "00005") and "missing" in skipped["00005"]["reason"]
    # Rows after the dropped ones were moved down intact.
    for row, vid in enumerate(cache.video_ids):
        idx = cache.index[row]["source_frames"]
        np.testing.assert_array_equal(cache.frames[row, 0], source_keyframe(tree, vid, idx[0], 16))
    assert all(r < len(cache) for k in range(1, 6) for s in ("train", "test") for r in cache.rows(k, s))

    strict = dict(frames=4, size=16, workers=1, progress=False, strict=True)
    with pytest.raises(ClipError, match="00005: clip folder missing"):
        prepare_cache(tree.root, caches / "strict", **strict)
    shutil.copytree(tree.clip_root / "00004", tree.clip_root / "00005")
    with pytest.raises(ClipError, match="2.jpg: frame does not decode"):
        prepare_cache(tree.root, caches / "strict", **strict)
    assert not (caches / "strict").exists()
    assert [p.name for p in caches.iterdir()] == ["c"]  # no temp folder left


def test_parallel_workers_match_single_process(dfew_tree, caches):
    tree = dfew_tree(num_clips=6, lengths=[10, 14, 8, 16, 12, 9], size=24)
    (tree.clip_root / "00002" / "5.jpg").write_bytes(b"garbage")
    a = open_cache(prepare_cache(tree.root, caches / "a", frames=6, size=16, workers=1, progress=False))
    b = open_cache(prepare_cache(tree.root, caches / "b", frames=6, size=16, workers=2, progress=False))
    np.testing.assert_array_equal(np.asarray(a.frames), np.asarray(b.frames))
    assert a.index == b.index and a.manifest["folds"] == b.manifest["folds"] and len(a) == 5


def test_interrupted_run_leaves_nothing_complete(dfew_tree, caches, monkeypatch):
    tree = dfew_tree(num_clips=6, lengths=4, size=16)
    calls = []
    real = decode_mod._process_clip

    def dies_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(decode_mod, "_process_clip", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(tree.root, caches / "c", frames=4, size=16, workers=1, progress=False)
    assert list(caches.iterdir()) == []
    with pytest.raises(CacheError, match="not found"):
        open_cache(caches / "c")


def test_stale_temp_of_a_killed_run_is_ignored_and_removed(dfew_tree, caches):
    tree = dfew_tree(num_clips=5, lengths=4, size=16)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = caches / f".c.tmp-{dead.pid}"
    stale.mkdir()
    (stale / "frames.u8").write_bytes(b"\0" * 100)  # what a SIGKILL mid-way leaves
    out = caches / "c"
    with pytest.raises(CacheError, match="not found"):
        open_cache(out)
    # A half-written folder under the final name (not ours to produce, but possible) is refused too.
    out.mkdir()
    (out / "frames.u8").write_bytes(b"\0" * 100)
    with pytest.raises(CacheError, match="no manifest"):
        open_cache(out)
    shutil.rmtree(out)
    prepare_cache(tree.root, out, frames=4, size=16, workers=1, progress=False)
    assert not stale.exists()
    assert len(open_cache(out)) == 5


def test_open_cache_checks_completeness(dfew_tree, caches):
    tree = dfew_tree(num_clips=5, lengths=4, size=16)
    out = prepare_cache(tree.root, caches / "c", frames=4, size=16, workers=1, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    with open(out / "frames.u8", "r+b") as f:
        f.truncate(100)
    with pytest.raises(CacheError, match=r"frames\.u8: expected \d+ bytes"):
        open_cache(out)
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheError, match="not marked complete"):
        open_cache(out)


def test_pickled_cache_does_not_carry_frames(dfew_tree, caches):
    tree = dfew_tree(num_clips=5, lengths=4, size=32)
    cache = open_cache(prepare_cache(tree.root, caches / "c", frames=4, size=32, workers=1, progress=False))
    first = np.array(cache.frames[0])
    blob = pickle.dumps(cache)
    assert len(blob) < cache.frames.nbytes
    np.testing.assert_array_equal(pickle.loads(blob).frames[0], first)


def test_16f_variant_and_missing_root(dfew_tree, caches):
    tree = dfew_tree(num_clips=5, lengths=16, size=16, frames_dir="clip_224x224_16f", nested=True)
    cache = open_cache(prepare_cache(tree.root, caches / "c", frames=16, size=16, workers=1, progress=False))
    assert cache.manifest["settings"]["frames_dir"] == "clip_224x224_16f"
    assert all(e["source_frames"] == list(range(16)) for e in cache.index)
    with pytest.raises(DFEWError, match="no Clip/ folder"):
        prepare_cache(caches, caches / "d", progress=False)


def test_cli_prepare(dfew_tree, caches, capsys):
    tree = dfew_tree(num_clips=6, lengths=5, size=16)
    (tree.clip_root / "00002" / "1.jpg").write_bytes(b"")
    argv = ["prepare", "--root", str(tree.root), "--out", str(caches / "c"), "--frames", "4", "--size", "16",
            "--keyframes", "uniform", "--workers", "1", "--no-progress"]
    assert cli_main(argv) == 0
    text = capsys.readouterr().out
    assert "5 clips x 4 frames of 16x16 (uniform keyframes; decoded: keyframes only" in text
    assert "00002" in text and "empty frame file" in text
    assert cli_main(argv + ["--strict"]) == 1
    assert "which --strict refuses" in capsys.readouterr().err
    assert cli_main(argv + ["--strict", "--overwrite"]) == 1
    assert "empty frame file" in capsys.readouterr().err
    assert cli_main(["prepare", "--root", str(caches / "none"), "--out", str(caches / "d")]) == 1
    assert "DFEW root folder not found" in capsys.readouterr().err


def test_class_names_come_from_the_manifest_or_the_dataset_it_names(dfew_tree, caches):
    from tdrag.data.labels import MAFW_CLASSES

    tree = dfew_tree(num_clips=5, lengths=4, size=16)
    out = prepare_cache(tree.root, caches / "c", frames=4, size=16, workers=1, progress=False)
    assert open_cache(out).class_names == tuple(DFEW_CLASSES)
    manifest = json.loads((out / "manifest.json").read_text())
    # A manifest older than its class list: the classes of the dataset it names, not DFEW's by default.
    del manifest["classes"]
    manifest["settings"]["dataset"] = "mafw"
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert open_cache(out).class_names == tuple(MAFW_CLASSES)
