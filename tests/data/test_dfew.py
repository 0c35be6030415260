"""DFEW reader: every on-disk variant, frame order, and each kind of bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tdrag.data.dfew import (
    ClipError,
    DFEWError,
    find_layout,
    load_frames,
    read_folds,
    read_split,
    sorted_frames,
)


def check_tree(tree, **kwargs):
    folds = read_folds(tree.root, **kwargs)
    assert sorted(folds) == [1, 2, 3, 4, 5]
    seen_test = []
    for k, splits in folds.items():
        for split, result in splits.items():
            assert result.skipped == []
            expected = {v for v in tree.ids if (tree.test_fold[v] == k) == (split == "test")}
            assert {c.video_id for c in result.clips} == expected
            for clip in result.clips:
                assert clip.label == tree.labels[clip.video_id]
                assert clip.clip_dir == tree.clip_root / clip.video_id
                assert len(clip.frames) == tree.lengths[clip.video_id]
            if split == "test":
                seen_test += [c.video_id for c in result.clips]
    # Each clip is in exactly one test set.
    assert sorted(seen_test) == sorted(tree.ids)
    return folds


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"underscore": True},
        {"pad_ids": False},
        {"nested": True},
        {"underscore": True, "pad_ids": False, "nested": True},
    ],
    ids=["plain", "underscore", "unpadded", "nested", "all"],
)
def test_variants_read_the_same(dfew_tree, options):
    tree = dfew_tree(num_clips=8, lengths=3, size=16, **options)
    folds = check_tree(tree)
    assert find_layout(tree.root).clip_root == tree.clip_root
    if not options.get("pad_ids", True):
        # The CSV says "1" but the clip keeps its folder name.
        assert "1,1" in tree.csv(1, "test").read_text()
        assert folds[1]["test"].clips[0].video_id == "00001"


def test_16f_variant_and_choice(dfew_tree):
    tree = dfew_tree(num_clips=5, lengths=16, size=16, frames_dir="clip_224x224_16f")
    check_tree(tree)
    assert find_layout(tree.root).frames_dir == "clip_224x224_16f"
    with pytest.raises(DFEWError, match="clip_224x224"):
        find_layout(tree.root, frames_dir="clip_224x224")

    # With both present, auto picks the full clips; the argument picks the 16-frame ones.
    full = tree.root / "Clip" / "clip_224x224"
    shutil.copytree(tree.clip_root, full)
    for vid in tree.ids:
        for n in range(17, 21):
            shutil.copy(full / vid / "1.jpg", full / vid / f"{n}.jpg")
    assert find_layout(tree.root).frames_dir == "clip_224x224"
    clip = read_split(tree.root, 1, "test").clips[0]
    assert len(clip.frames) == 20 and clip.clip_dir.parent == full
    clip16 = read_split(tree.root, 1, "test", frames_dir="clip_224x224_16f").clips[0]
    assert len(clip16.frames) == 16 and clip16.clip_dir.parent == tree.clip_root


def test_frames_in_number_order(dfew_tree):
    tree = dfew_tree(num_clips=5, lengths=16, size=24)
    clip = read_split(tree.root, 1, "test").clips[0]
    assert [p.name for p in clip.frames] == [f"{n}.jpg" for n in range(1, 17)]
    frames = load_frames(clip)
    assert frames.shape == (16, 24, 24, 3) and frames.dtype == np.uint8
    # Blue (RGB channel 2) grows by 8 per frame number in the fixture, red by 2.
    blue = frames[..., 2].reshape(16, -1).mean(axis=1)
    assert np.all(np.diff(blue) > 4)
    sub = load_frames(clip, [9, 1])
    np.testing.assert_array_equal(sub, frames[[9, 1]])


def test_sorted_frames_handles_names(tmp_path):
    names = ["10.jpg", "2.jpg", "1.jpg", "frame_003.jpg", "notes.txt", "cover.jpg"]
    paths = [tmp_path / n for n in names]
    assert [p.name for p in sorted_frames(paths)] == ["1.jpg", "2.jpg", "frame_003.jpg", "10.jpg", "cover.jpg"]


def _append(path, line):
    path.write_text(path.read_text() + line + "\n")


def test_bad_label_skipped_or_raised(dfew_tree):
    tree = dfew_tree(num_clips=5, lengths=2, size=16)
    csv = tree.csv(1, "test")
    _append(csv, "00002,9")
    result = read_split(tree.root, 1, "test")
    assert [c.video_id for c in result.clips] == ["00001"]
    (skip,) = result.skipped
    assert skip.video_id == "00002" and str(csv) in skip.path and "outside 1..7" in skip.reason
    with pytest.raises(DFEWError, match=r"set_1\.csv:3.*outside 1\.\.7"):
        read_split(tree.root, 1, "test", strict=True)


def test_duplicate_id_skipped_or_raised(dfew_tree):
    tree = dfew_tree(num_clips=10, lengths=2, size=16, pad_ids=False)
    csv = tree.csv(2, "test")
    _append(csv, "00002,2")  # the padded spelling of an id already listed as "2"
    result = read_split(tree.root, 2, "test")
    assert [c.video_id for c in result.clips] == ["00002", "00007"]
    (skip,) = result.skipped
    assert skip.video_id == "00002" and "listed again (first at line 2)" in skip.reason and str(csv) in skip.path
    with pytest.raises(DFEWError, match="listed again"):
        read_split(tree.root, 2, "test", strict=True)


def test_missing_and_empty_clip_folder(dfew_tree):
    tree = dfew_tree(num_clips=10, lengths=2, size=16)
    shutil.rmtree(tree.clip_root / "00001")
    for p in (tree.clip_root / "00006").iterdir():
        p.unlink()
    result = read_split(tree.root, 1, "test")
    assert result.clips == []
    reasons = {s.video_id: (s.path, s.reason) for s in result.skipped}
    assert reasons["00001"][0] == str(tree.clip_root / "00001") and "missing" in reasons["00001"][1]
    assert reasons["00006"][0] == str(tree.clip_root / "00006") and "no frame images" in reasons["00006"][1]
    with pytest.raises(ClipError, match="00001: clip folder missing"):
        read_split(tree.root, 1, "test", strict=True)
    # Other folds still read their clips.
    assert len(read_split(tree.root, 2, "test").clips) == 2


def test_wrong_header_raises_with_path(dfew_tree):
    tree = dfew_tree(num_clips=5, lengths=2, size=16)
    csv = tree.csv(3, "train")
    csv.write_text("name,emotion\n00001,1\n")
    with pytest.raises(DFEWError, match=r"set_3\.csv: wrong header 'name,emotion'"):
        read_split(tree.root, 3, "train")
    # A byte-order mark and spaces around the header are fine.
    csv.write_text("\ufeffvideo_name, label\n00001,1\n")
    assert [c.video_id for c in read_split(tree.root, 3, "train").clips] == ["00001"]


def test_missing_folders_explain_where(dfew_tree, tmp_path):
    tree = dfew_tree(num_clips=5, lengths=2, size=16)
    with pytest.raises(DFEWError, match="not found"):
        find_layout(tmp_path / "nowhere")
    shutil.rmtree(tree.root / "EmoLabel_DataSplit")
    with pytest.raises(DFEWError, match=r"EmoLabel_DataSplit/train\(single-labeled\)/set_<k>\.csv"):
        find_layout(tree.root)
    shutil.rmtree(tree.root / "Clip")
    with pytest.raises(DFEWError, match=r"no Clip/ folder.*Clip/clip_224x224/<id>"):
        find_layout(tree.root)


def test_missing_csv_raises(dfew_tree):
    tree = dfew_tree(num_clips=5, lengths=2, size=16)
    tree.csv(4, "test").unlink()
    with pytest.raises(DFEWError, match=r"set_4\.csv: split CSV not found"):
        read_folds(tree.root)


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_bad_jpeg_found_when_decoding(dfew_tree, damage):
    tree = dfew_tree(num_clips=5, lengths=4, size=32)
    bad = tree.clip_root / "00001" / "3.jpg"
    data = bad.read_bytes()
    bad.write_bytes({"garbage": b"not a jpeg at all" * 10, "empty": b"", "truncated": data[: len(data) // 2]}[damage])
    clip = read_split(tree.root, 1, "test").clips[0]  # listing does not decode
    with pytest.raises(ClipError, match=rf"{bad}: "):
        load_frames(clip)
    assert load_frames(clip, [0, 1, 3]).shape == (3, 32, 32, 3)
