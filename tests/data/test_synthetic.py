"""Synthetic DFEW-format data: layout, determinism, masks, class signal and class dynamics."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from tdrag.data.synthetic import dataset as synthetic
from tdrag.data.labels import DFEW_CLASSES, NUM_DFEW_CLASSES
from tdrag.data.synthetic import (
    SynthError,
    assign_labels_and_folds,
    generate_dataset,
    is_synthetic_root,
    load_clip_masks,
    load_meta,
    render_clip,
)
from tdrag.data.synthetic.clips import FACE_ZOOM
from tdrag.data.synthetic.expressions import apex_vector
from tdrag.data.synthetic.presets import PRESETS
from tdrag.data.synthetic.faces import Look

C = {name: i for i, name in enumerate(DFEW_CLASSES)}
SPLITS = {"train": "train(single-labeled)", "test": "test(single-labeled)"}


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["video_name", "label"], path
    return [tuple(r) for r in rows[1:]]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth") / "data", clips=35, preset="easy", seed=3, size=48)


def test_layout_is_dfew(synth_root):
    meta = load_meta(synth_root)
    ids = [row["video_id"] for row in meta["clips"]]
    assert ids == [f"{i:05d}" for i in range(1, 36)]
    clip_dirs = sorted(p.name for p in (synth_root / "Clip" / "clip_224x224").iterdir())
    assert clip_dirs == ids
    for row in meta["clips"][:5]:
        folder = synth_root / "Clip" / "clip_224x224" / row["video_id"]
        names = sorted(p.name for p in folder.iterdir())
        assert names == sorted(f"{n}.jpg" for n in range(1, row["length"] + 1))
        img = cv2.imread(str(folder / "1.jpg"))
        assert img is not None and img.shape == (48, 48, 3)
    lengths = [row["length"] for row in meta["clips"]]
    assert min(lengths) >= 24 and max(lengths) <= 96
    # Nothing but DFEW's folders and the synthetic extras at the root.
    assert sorted(p.name for p in synth_root.iterdir()) == ["Clip", "EmoLabel_DataSplit", "synthetic"]
    assert not list(synth_root.parent.glob(".data.*")), "a temporary build folder was left behind"


def test_splits_are_balanced_folds(synth_root):
    meta = load_meta(synth_root)
    label_of = {row["video_id"]: row["label"] for row in meta["clips"]}
    ids = set(label_of)
    test_sets = []
    for k in range(1, 6):
        test = _read_csv(synth_root / "EmoLabel_DataSplit" / SPLITS["test"] / f"set_{k}.csv")
        train = _read_csv(synth_root / "EmoLabel_DataSplit" / SPLITS["train"] / f"set_{k}.csv")
        for vid, label in test + train:
            assert 1 <= int(label) <= 7
            assert int(label) - 1 == label_of[vid]
        test_ids, train_ids = {v for v, _ in test}, {v for v, _ in train}
        assert test_ids.isdisjoint(train_ids) and test_ids | train_ids == ids
        counts = Counter(label_of[v] for v in test_ids)
        assert len(test_ids) == 7 and all(counts[c] == 1 for c in range(7)), counts
        test_sets.append(test_ids)
    # Each clip is in exactly one test set, and meta names that fold.
    for vid in ids:
        folds = [k + 1 for k, s in enumerate(test_sets) if vid in s]
        assert len(folds) == 1
        assert folds[0] == next(r["fold"] for r in meta["clips"] if r["video_id"] == vid)


@pytest.mark.parametrize("num_clips", [7, 20, 36, 103])
def test_label_and_fold_assignment_is_balanced(num_clips):
    labels, folds = assign_labels_and_folds(num_clips, seed=9)
    class_counts = np.bincount(labels, minlength=NUM_DFEW_CLASSES)
    assert class_counts.max() - class_counts.min() <= 1
    fold_sizes = np.bincount(folds, minlength=6)[1:]
    assert fold_sizes.max() - fold_sizes.min() <= 1
    for c in range(NUM_DFEW_CLASSES):
        per_fold = np.bincount(folds[labels == c], minlength=6)[1:]
        assert per_fold.max() - per_fold.min() <= 1
    again = assign_labels_and_folds(num_clips, seed=9)
    assert np.array_equal(labels, again[0]) and np.array_equal(folds, again[1])
    other = assign_labels_and_folds(num_clips, seed=10)[0]
    assert num_clips < 14 or not np.array_equal(labels, other)


def test_masks_and_apex(synth_root):
    meta = load_meta(synth_root)
    for row in meta["clips"]:
        masks, apex = load_clip_masks(synth_root, row["video_id"])
        assert masks.shape == (row["length"], 48, 48) and masks.dtype == np.uint8
        assert set(np.unique(masks).tolist()) <= {0, 1}
        assert 0 <= apex < row["length"] and apex == row["apex"]
        if row["label_name"] != "Neutral":
            assert masks[apex].sum() > 0, row
            assert row["onset"] is not None and row["onset"] <= apex
            assert masks[: row["onset"]].sum() == 0  # nothing carries signal before the onset
    masks, apex = load_clip_masks(synth_root, "1")  # unpadded id, as some DFEW CSVs write them
    assert masks.shape[0] == meta["clips"][0]["length"]
    with pytest.raises(SynthError, match="99999.npz"):
        load_clip_masks(synth_root, "99999")


def test_held_frames_are_exact_repeats(synth_root):
    meta = load_meta(synth_root)
    repeats = 0
    for row in meta["clips"]:
        folder = synth_root / "Clip" / "clip_224x224" / row["video_id"]
        data = [(folder / f"{n}.jpg").read_bytes() for n in range(1, row["length"] + 1)]
        repeats += sum(a == b for a, b in zip(data, data[1:]))
        assert len(set(data)) == row["distinct_frames"]
    assert repeats > 0


def test_same_seed_same_bytes_any_worker_count(tmp_path, synth_root):
    a = generate_dataset(tmp_path / "a", clips=7, preset="hard", seed=5, size=40, workers=1)
    b = generate_dataset(tmp_path / "b", clips=7, preset="hard", seed=5, size=40, workers=2)
    c = generate_dataset(tmp_path / "c", clips=7, preset="hard", seed=6, size=40, workers=1)
    bytes_a, bytes_b, bytes_c = _tree_bytes(a), _tree_bytes(b), _tree_bytes(c)
    assert bytes_a == bytes_b
    jpgs = [k for k in bytes_a if k.endswith(".jpg") and k in bytes_c]
    assert jpgs and any(bytes_a[k] != bytes_c[k] for k in jpgs)


def test_render_clip_matches_written_clip(synth_root):
    meta = load_meta(synth_root)
    row = meta["clips"][4]
    clip = render_clip(3, 4, row["label"], "easy", 48)
    assert clip.frames.shape == (row["length"], 48, 48, 3) and clip.apex == row["apex"]
    masks, _ = load_clip_masks(synth_root, row["video_id"])
    assert np.array_equal(masks, clip.masks)
    jpg = cv2.imread(str(synth_root / "Clip" / "clip_224x224" / row["video_id"] / "1.jpg"))[..., ::-1]
    assert np.abs(jpg.astype(int) - clip.frames[0]).mean() < 6  # JPEG of the same RGB frame


def test_refuses_foreign_folder_and_replaces_previous_output(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SynthError, match="not empty"):
        generate_dataset(foreign, clips=2, size=32)
    assert (foreign / "notes.txt").read_text() == "mine"

    out = generate_dataset(tmp_path / "out", clips=3, size=32, seed=1)
    first = _tree_bytes(out)
    generate_dataset(out, clips=2, size=32, seed=2)
    assert len(load_meta(out)["clips"]) == 2 and _tree_bytes(out) != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "out"]  # no temp folders left

    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_synthetic_root(generate_dataset(empty, clips=1, size=32))


def test_interrupted_run_leaves_nothing_complete_looking(tmp_path, monkeypatch):
    real = synthetic._write_clip

    def failing(root, index, *args):
        if index == 2:
            raise KeyboardInterrupt
        return real(root, index, *args)

    monkeypatch.setattr(synthetic, "_write_clip", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "out", clips=5, size=32)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        generate_dataset(tmp_path / "x", clips=2, preset="impossible")
    with pytest.raises(ValueError, match="clips"):
        generate_dataset(tmp_path / "x", clips=0)
    with pytest.raises(ValueError, match="size"):
        generate_dataset(tmp_path / "x", clips=2, size=8)
    with pytest.raises(SynthError, match="meta.json"):
        load_meta(tmp_path)


def _thumb(frame: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)


def test_classes_are_separable_on_easy():
    """Nearest class centroid on (apex - first frame) thumbnails beats chance by far on `easy`."""
    per_class, train = 10, 6
    x = np.array([[(_thumb(c.frames[c.apex]) - _thumb(c.frames[0])).ravel()
                   for c in (render_clip(21, k * 7 + label, label, "easy", 48) for k in range(per_class))]
                  for label in range(NUM_DFEW_CLASSES)])  # (C, per_class, 1024)
    centroids = x[:, :train].mean(axis=1)
    test = x[:, train:].reshape(-1, x.shape[-1])
    truth = np.repeat(np.arange(NUM_DFEW_CLASSES), per_class - train)
    pred = np.argmin(((test[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == truth).mean() >= 0.5, (pred, truth)  # chance is 1/7


CLEAN = dataclasses.replace(
    PRESETS["easy"], shift=0.0, rotation=0.0, scale=(1.0, 1.0), pose_drift=0.0, light=0.0, noise=(0.0, 0.0),
    blur_prob=0.0, occlusion_prob=0.0, hold_prob=0.0, length=(60, 60),
)
#: CLEAN drawn in the fine look (thin strokes, small moves) that `hard` uses.
FINE_CLEAN = dataclasses.replace(
    CLEAN, zoom=FACE_ZOOM, **{f.name: getattr(Look(), f.name) for f in dataclasses.fields(Look)}
)


def test_expression_change_lies_inside_the_masks():
    """The masks cover the signal: with no nuisance almost all onset-to-apex change is inside
    them, and on `easy` (pose drift, noise) pixels inside change far more than pixels outside."""
    for preset, check in ((CLEAN, "share"), (FINE_CLEAN, "share"), ("easy", "ratio")):
        for label in range(NUM_DFEW_CLASSES):
            if label == C["Neutral"]:
                continue
            clip = render_clip(8, label, label, preset, 64)
            change = np.abs(clip.frames[clip.apex].astype(np.float32) - clip.frames[0]).mean(-1)
            inside = clip.masks[clip.apex].astype(bool)
            if check == "share":
                assert change[inside].sum() / change.sum() > 0.9, DFEW_CLASSES[label]
            else:
                assert change[inside].mean() > 2 * change[~inside].mean(), DFEW_CLASSES[label]


def _half_change_frame(clip, band: tuple[float, float]) -> int:
    """First frame at which a horizontal band of the face has half its largest change from frame 0."""
    grey = clip.frames.astype(np.float32).mean(-1)
    size = grey.shape[1]
    y0, y1 = int(band[0] * size), int(band[1] * size)
    change = np.abs(grey[:, y0:y1] - grey[0, y0:y1]).mean(axis=(1, 2))
    return int(np.argmax(change >= 0.5 * change.max()))


BROWS, MOUTH, FACE = (0.30, 0.41), (0.6, 0.8), (0.0, 1.0)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_surprise_has_a_faster_onset_than_fear(index):
    surprise = render_clip(11, index, C["Surprise"], CLEAN, 64)
    fear = render_clip(11, index, C["Fear"], CLEAN, 64)
    rise_surprise = _half_change_frame(surprise, FACE) - surprise.onset
    rise_fear = _half_change_frame(fear, FACE) - fear.onset
    assert rise_surprise * 2 < rise_fear, (rise_surprise, rise_fear)
    # Fear: the mouth moves last; Surprise: everything at once.
    assert _half_change_frame(fear, MOUTH) - _half_change_frame(fear, BROWS) >= 5
    assert abs(_half_change_frame(surprise, MOUTH) - _half_change_frame(surprise, BROWS)) <= 2


@pytest.mark.parametrize("index", [0, 1, 2])
def test_angry_and_disgust_move_parts_in_opposite_order(index):
    angry = render_clip(12, index, C["Angry"], CLEAN, 64)
    disgust = render_clip(12, index, C["Disgust"], CLEAN, 64)
    assert _half_change_frame(angry, BROWS) + 5 <= _half_change_frame(angry, MOUTH)
    assert _half_change_frame(disgust, MOUTH) + 5 <= _half_change_frame(disgust, BROWS)


def test_hard_pairs_share_apex_faces_easy_ones_do_not():
    easy, hard = PRESETS["easy"], PRESETS["hard"]
    assert not np.allclose(apex_vector("Fear", easy.shared_apex), apex_vector("Surprise", easy.shared_apex))
    assert not np.allclose(apex_vector("Disgust", easy.shared_apex), apex_vector("Angry", easy.shared_apex))
    assert np.allclose(apex_vector("Fear", hard.shared_apex), apex_vector("Surprise", hard.shared_apex))
    assert np.allclose(apex_vector("Disgust", hard.shared_apex), apex_vector("Angry", hard.shared_apex))


def test_hard_uses_the_fine_look():
    fields = [f.name for f in dataclasses.fields(Look)]
    assert PRESETS["hard"].look == Look() and PRESETS["hard"].zoom == FACE_ZOOM
    assert PRESETS["easy"].look != Look()
    assert tuple(getattr(PRESETS["easy"], name) for name in fields) == dataclasses.astuple(PRESETS["easy"].look)


def test_easy_expressions_are_bolder_than_the_fine_look():
    """At 48 px the bold look changes far more pixels from onset to apex, in every expressive class."""
    for label in range(NUM_DFEW_CLASSES):
        if label == C["Neutral"]:
            continue
        changed = []
        for preset in (CLEAN, FINE_CLEAN):
            clip = render_clip(13, label, label, preset, 48)
            change = np.abs(clip.frames[clip.apex].astype(np.float32) - clip.frames[0]).max(-1)
            changed.append(int((change > 40).sum()))
        assert changed[0] >= 1.5 * changed[1], (DFEW_CLASSES[label], changed)


def test_easy_varies_less_in_appearance_than_hard():
    """Background and skin colours spread less over `easy`'s clips than over `hard`'s."""
    def spread(preset):
        clips = [render_clip(6, i, C["Neutral"], preset, 48) for i in range(12)]
        corner = np.array([c.frames[0, :4, :4].reshape(-1, 3).mean(0) for c in clips])
        cheek = np.array([c.frames[0, 30:33, 14:17].reshape(-1, 3).mean(0) for c in clips])
        return corner.std(0).mean(), cheek.std(0).mean()

    easy, hard = spread("easy"), spread("hard")
    assert easy[0] < 0.7 * hard[0] and easy[1] < hard[1], (easy, hard)


def test_hard_has_more_nuisance_than_easy():
    def stats(preset):
        held = []
        for i in range(14):
            clip = render_clip(4, i, i % 7, preset, 40)
            distinct = len({f.tobytes() for f in clip.frames})
            held.append(1 - distinct / len(clip.frames))
        return float(np.mean(held))

    assert stats("hard") > stats("easy")


def test_dfew_reader_reads_the_synthetic_tree(synth_root):
    from tdrag.data.dfew import read_split

    meta = load_meta(synth_root)
    rows = {row["video_id"]: row for row in meta["clips"]}
    result = read_split(synth_root, 2, "test", strict=True)
    assert not result.skipped
    assert len(result.clips) == 7
    for clip in result.clips:
        assert clip.label == rows[clip.video_id]["label"]
        assert len(clip.frames) == rows[clip.video_id]["length"]
        assert clip.frames[9].name == "10.jpg"


def test_meta_records_settings(synth_root):
    meta = json.loads((synth_root / "synthetic" / "meta.json").read_text())
    assert meta["preset"] == "easy" and meta["seed"] == 3 and meta["size"] == 48
    assert meta["classes"] == list(DFEW_CLASSES) and meta["complete"] is True
    assert {row["label_name"] for row in meta["clips"]} == set(DFEW_CLASSES)
