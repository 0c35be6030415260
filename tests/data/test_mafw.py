"""The MAFW reader on trees built here: the layout as distributed, its variants, bad input."""

from __future__ import annotations

import pytest

from tdrag.data import mafw
from tdrag.data.clips import ClipError, DatasetError, load_frames
from tdrag.data.datasets import get_reader
from tdrag.data.labels import MAFW_CLASSES, mafw_label
from tests.data.test_ferv39k import write_clip

OFFICIAL = ("Train & Test Set", "single", "no_caption")


def build(root, rows, split_parts=OFFICIAL, frames_dir=("data", "frames"), suffix=".jpg", folds=(1, 2, 3, 4, 5)):
    """MAFW tree: ``rows`` = (clip name, class, test fold); every clip is in the other folds' train lists."""
    for name, _, _ in rows:
        write_clip(root.joinpath(*frames_dir) / name, suffix=suffix)
    sets = root.joinpath(*split_parts)
    for k in folds:
        folder = sets / f"set_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.txt").write_text("".join(f"{n}.mp4 {c}\n" for n, c, f in rows if f != k))
        (folder / "test.txt").write_text("".join(f"{n}.mp4 {c}\n" for n, c, f in rows if f == k))
    return root


ROWS = [("00001", "anger", 1), ("00002", "happiness", 2), ("00003", "disappointment", 3), ("00004", "contempt", 1),
        ("00005", "neutral", 4), ("00006", "helplessness", 5)]


def test_label_map_is_mafws_order():
    assert MAFW_CLASSES == ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt",
                            "anxiety", "helplessness", "disappointment")
    assert [mafw_label(c) for c in MAFW_CLASSES] == list(range(11))
    assert mafw_label("Happiness") == 3
    with pytest.raises(ValueError, match="'Happy' is not a MAFW class"):
        mafw_label("Happy")
    assert get_reader("mafw") is mafw and mafw.FOLDS == (1, 2, 3, 4, 5)


def test_reads_the_distributed_layout(tmp_path):
    root = build(tmp_path, ROWS)
    layout = mafw.find_layout(root)
    assert layout.split_dir == root.joinpath(*OFFICIAL) and layout.clip_root == root / "data" / "frames"
    folds = mafw.read_folds(layout)
    assert sorted(folds) == [1, 2, 3, 4, 5]
    test1 = folds[1]["test"]
    assert [(c.video_id, c.label) for c in test1.clips] == [("00001", 0), ("00004", 7)]
    assert test1.split_file == root.joinpath(*OFFICIAL) / "set_1" / "test.txt"
    assert [c.label for c in folds[1]["train"].clips] == [3, 10, 4, 9]
    assert load_frames(test1.clips[0]).shape == (3, 12, 12, 3)
    assert len(mafw.split_files(layout)) == 10


@pytest.mark.parametrize("split_parts", [("split", "single", "no_caption"), ("Train_Test_Set", "single", "no_caption")])
def test_renamed_split_folders_frames_at_root_and_png(tmp_path, split_parts):
    root = build(tmp_path, ROWS, split_parts=split_parts, frames_dir=("frames",), suffix=".png")
    layout = mafw.find_layout(root)
    assert layout.split_dir == root.joinpath(*split_parts) and layout.clip_root == root / "frames"
    assert [c.video_id for c in mafw.read_split(layout, 2, "test").clips] == ["00002"]


def test_split_dir_option_and_unpadded_names(tmp_path):
    root = build(tmp_path, ROWS, split_parts=("lists",))
    with open(root / "lists" / "set_5" / "test.txt", "a") as handle:
        handle.write("3 Disappointment\n")  # a second listing of 00003, unpadded, no suffix
    layout = mafw.find_layout(root, split_dir="lists")
    result = mafw.read_split(layout, 5, "test")
    assert [c.video_id for c in result.clips] == ["00006", "00003"]
    assert mafw.find_layout(root, split_dir=str(root / "lists")).split_dir == root / "lists"


def test_bad_rows_are_skipped_with_path_and_reason_or_raise_when_strict(tmp_path):
    root = build(tmp_path, ROWS)
    listing = root.joinpath(*OFFICIAL) / "set_1" / "test.txt"
    with open(listing, "a") as handle:
        handle.write("00007.mp4 Happy\n00001.mp4 anger\n09999.mp4 fear\nsub/00002.mp4 anger\n00008.mp4\n")
    result = mafw.read_split(root, 1, "test")
    assert [c.video_id for c in result.clips] == ["00001", "00004"]
    reasons = {s.video_id: (s.path, s.reason) for s in result.skipped}
    assert reasons["00007"][0] == f"{listing}:3" and "'Happy' is not a MAFW class" in reasons["00007"][1]
    assert "listed again (first at line 1)" in reasons["00001"][1]
    assert reasons["09999"] == (str(root / "data" / "frames" / "09999"), f"clip folder missing (listed at {listing}:5)")
    assert "not a clip name" in reasons["sub/00002"][1]
    assert "has no class" in reasons["00008"][1]
    with pytest.raises(DatasetError, match=r"test\.txt:3: .*'Happy'"):
        mafw.read_split(root, 1, "test", strict=True)


def test_missing_folders_and_lists_raise_naming_the_path(tmp_path):
    with pytest.raises(DatasetError, match="MAFW root folder not found"):
        mafw.find_layout(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no data/frames/ folder"):
        mafw.find_layout(tmp_path)
    (tmp_path / "data" / "frames").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no single-expression split lists; expected .*no_caption/set_<k>"):
        mafw.find_layout(tmp_path)
    with pytest.raises(DatasetError, match="split folder not found"):
        mafw.find_layout(tmp_path, split_dir="elsewhere")
    build(tmp_path, ROWS, folds=(1, 2))
    layout = mafw.find_layout(tmp_path)
    with pytest.raises(DatasetError, match=r"set_3/train\.txt: split list not found"):
        mafw.read_folds(layout, folds=(3,))


def test_empty_clip_folder_raises_clip_error_when_strict(tmp_path):
    root = build(tmp_path, ROWS)
    for path in (root / "data" / "frames" / "00004").iterdir():
        path.unlink()
    with pytest.raises(ClipError, match=r"00004: clip folder has no frame images"):
        mafw.read_split(root, 1, "test", strict=True)
