"""The FERV39k reader on trees built here: the layout as distributed, its variants, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tdrag.data import ferv39k
from tdrag.data.clips import ClipError, DatasetError, load_frames
from tdrag.data.datasets import get_reader
from tdrag.data.labels import FERV39K_CLASSES, ferv39k_label


def write_clip(folder, frames: int = 3, suffix: str = ".jpg", value: int = 100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(frames):
        image = np.full((12, 12, 3), value + n, np.uint8)
        ok, buf = cv2.imencode(suffix, image)
        assert ok
        (folder / f"{n:04d}{suffix}").write_bytes(buf.tobytes())


def build(root, train, test, setup="All_scenes", tag="All", split_dir="4_setups", frames_dir="2_ClipsforFaceCrop",
          suffix=".jpg", sep=" "):
    """FERV39k tree with clips ``train``/``test``: lists of (relative path, class name or raw label)."""
    for path, _ in train + test:
        write_clip(root / frames_dir / path, suffix=suffix)
    folder = root / split_dir / setup
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"train_{tag}.csv").write_text("".join(f"{p}{sep}{c}\n" for p, c in train))
    (folder / f"test_{tag}.csv").write_text("".join(f"{p}{sep}{c}\n" for p, c in test))
    return root


TRAIN = [("Action/Happy/0000", "Happy"), ("Interview/Sad/0003", "Sad"), ("Talkshow/Fear/0010", "Fear")]
TEST = [("DailyLife/Angry/0001", "Angry"), ("Action/Neutral/0002", "Neutral")]


def test_label_map_is_ferv39ks_order():
    assert FERV39K_CLASSES == ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
    assert [ferv39k_label(c) for c in FERV39K_CLASSES] == list(range(7))
    assert ferv39k_label(" happy ") == 0 and ferv39k_label("FEAR") == 6
    with pytest.raises(ValueError, match="not a FERV39k class"):
        ferv39k_label("Contempt")
    with pytest.raises(ValueError, match="names, not numbers"):
        ferv39k_label("3")
    assert get_reader("ferv39k") is ferv39k and ferv39k.FOLDS == (1,)


def test_reads_the_distributed_layout(tmp_path):
    root = build(tmp_path, TRAIN, TEST)
    folds = ferv39k.read_folds(ferv39k.find_layout(root))
    assert set(folds) == {1}
    train, test = folds[1]["train"], folds[1]["test"]
    assert [c.video_id for c in train.clips] == [p for p, _ in TRAIN]
    assert [c.label for c in train.clips] == [0, 1, 6]
    assert [c.label for c in test.clips] == [3, 2]
    assert train.split_file == root / "4_setups" / "All_scenes" / "train_All.csv"
    clip = train.clips[1]
    assert clip.clip_dir == root / "2_ClipsforFaceCrop" / "Interview" / "Sad" / "0003"
    assert load_frames(clip).shape == (3, 12, 12, 3)
    assert not train.skipped and not test.skipped


def test_scene_setup_renamed_split_folder_png_and_commas(tmp_path):
    root = build(tmp_path, TRAIN[:2], TEST[:1], setup="Action", tag="Action", split_dir="setups", suffix=".png",
                 sep=",")
    layout = ferv39k.find_layout(root, setup="action")  # folder names matched without case
    assert layout.setup_dir == root / "setups" / "Action"
    result = ferv39k.read_split(layout, 1, "train")
    assert [c.video_id for c in result.clips] == ["Action/Happy/0000", "Interview/Sad/0003"]
    assert result.clips[0].frames[0].suffix == ".png"
    # split_dir given explicitly, absolute
    assert ferv39k.find_layout(root, setup="Action", split_dir=str(root / "setups")).lists == layout.lists


def test_absolute_and_backslash_paths_and_nested_frames_folder(tmp_path):
    nested = tmp_path / "2_ClipsforFaceCrop" / "2_ClipsforFaceCrop"
    write_clip(nested / "Action" / "Happy" / "0000")
    write_clip(nested / "War" / "Sad" / "0001")
    folder = tmp_path / "4_setups" / "All_scenes"
    folder.mkdir(parents=True)
    (folder / "train_All.csv").write_text("/mnt/x/FERV39k/2_ClipsforFaceCrop/Action/Happy/0000 Happy\n"
                                          "War\\Sad\\0001\tSad\n")
    (folder / "test_All.csv").write_text("")
    result = ferv39k.read_split(tmp_path, 1, "train")
    assert [c.video_id for c in result.clips] == ["Action/Happy/0000", "War/Sad/0001"]


def test_bad_rows_are_skipped_with_path_and_reason_or_raise_when_strict(tmp_path):
    train = TRAIN[:1] + [("Action/Happy/0009", "Joy"), ("../outside/0001", "Happy"), ("Action/Happy/0000", "Happy")]
    root = build(tmp_path, train, TEST)
    folder = root / "4_setups" / "All_scenes"
    with open(folder / "train_All.csv", "a") as handle:
        handle.write("Action/Sad/0404 Sad\nAction/Lonely\n")
    empty = root / "2_ClipsforFaceCrop" / "Talkshow" / "Sad" / "0005"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("x")
    with open(folder / "train_All.csv", "a") as handle:
        handle.write("Talkshow/Sad/0005 Sad\n")
    result = ferv39k.read_split(root, 1, "train")
    assert [c.video_id for c in result.clips] == ["Action/Happy/0000"]
    reasons = {s.video_id: (s.path, s.reason) for s in result.skipped}
    train_csv = folder / "train_All.csv"
    assert "'Joy' is not a FERV39k class" in reasons["Action/Happy/0009"][1]
    assert reasons["Action/Happy/0009"][0] == f"{train_csv}:2"
    assert "not a relative path" in reasons["../outside/0001"][1]
    assert "listed again (first at line 1)" in reasons["Action/Happy/0000"][1]
    assert reasons["Action/Sad/0404"] == (str(root / "2_ClipsforFaceCrop" / "Action" / "Sad" / "0404"),
                                          f"clip folder missing (listed at {train_csv}:5)")
    assert "has no class" in reasons["Action/Lonely"][1]
    assert "no frame images" in reasons["Talkshow/Sad/0005"][1]
    with pytest.raises(DatasetError, match=r"train_All\.csv:2: .*'Joy'"):
        ferv39k.read_split(root, 1, "train", strict=True)


def test_missing_folders_and_lists_raise_naming_the_path(tmp_path):
    with pytest.raises(DatasetError, match="FERV39k root folder not found"):
        ferv39k.find_layout(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="no 2_ClipsforFaceCrop/ folder"):
        ferv39k.find_layout(tmp_path)
    (tmp_path / "2_ClipsforFaceCrop").mkdir()
    with pytest.raises(DatasetError, match="no 4_setups/ folder"):
        ferv39k.find_layout(tmp_path)
    (tmp_path / "4_setups" / "All_scenes").mkdir(parents=True)
    (tmp_path / "4_setups" / "Action").mkdir()
    with pytest.raises(DatasetError, match=r"All_scenes: no train list .*train_All\.csv"):
        ferv39k.find_layout(tmp_path)
    with pytest.raises(DatasetError, match=r"no setup folder 'War' \(found: Action, All_scenes\)"):
        ferv39k.find_layout(tmp_path, setup="War")
    (tmp_path / "4_setups" / "All_scenes" / "train_All.csv").write_text("")
    (tmp_path / "4_setups" / "All_scenes" / "test_All.csv").write_text("")
    layout = ferv39k.find_layout(tmp_path)
    (tmp_path / "4_setups" / "All_scenes" / "test_All.csv").unlink()
    with pytest.raises(DatasetError, match=r"test_All\.csv: split list not found"):
        ferv39k.read_folds(layout)
    with pytest.raises(DatasetError, match="fold 2: FERV39k has one train/test split"):
        ferv39k.split_files(layout, folds=(2,))


def test_missing_clip_raises_clip_error_when_strict(tmp_path):
    root = build(tmp_path, TRAIN, TEST)
    with open(root / "4_setups" / "All_scenes" / "test_All.csv", "a") as handle:
        handle.write("War/Fear/0777 Fear\n")
    with pytest.raises(ClipError, match=r"War/Fear/0777: clip folder missing"):
        ferv39k.read_split(root, 1, "test", strict=True)
