"""The synthetic temporal ground truth: part curves per frame and evidence frames (hand-made
curves with known answers), written beside masks and regions with reproducible bytes."""

from __future__ import annotations

import numpy as np
import pytest

from tdrag.data.labels import DFEW_CLASSES
from tdrag.data.synthetic import SynthError, generate_dataset, load_clip_masks, load_clip_timeline, load_meta
from tdrag.data.synthetic.faces import GROUPS
from tdrag.data.synthetic.timeline import evidence_frames, nearest_class, twin_of

BROWS, EYES, MOUTH = (GROUPS.index(g) for g in ("brows", "eyes", "mouth"))


def curves_of(rows: list[dict[int, float]]) -> np.ndarray:
    out = np.zeros((len(rows), len(GROUPS)))
    for t, row in enumerate(rows):
        for part, value in row.items():
            out[t, part] = value
    return out


def test_twins_and_nearest_classes():
    assert twin_of("Fear", DFEW_CLASSES, shared_apex=True) == "Surprise"
    assert twin_of("Angry", DFEW_CLASSES, shared_apex=True) == "Disgust"
    assert twin_of("Fear", DFEW_CLASSES, shared_apex=False) is None
    assert nearest_class("Surprise", DFEW_CLASSES, shared_apex=True) == "Fear"
    # Without shared apex faces the nearest class is the closest apex face, never the class itself.
    assert nearest_class("Happy", DFEW_CLASSES, shared_apex=False) not in ("Happy", "")


def test_fear_transition_with_eyes_ahead_is_evidence_rest_and_apex_are_not():
    full = {BROWS: 1.0, EYES: 1.0, MOUTH: 1.0}
    curves = curves_of([{}, {EYES: 0.7}, {EYES: 1.0, BROWS: 0.5}, full, full])
    relax = np.ones(len(curves))
    got = evidence_frames("Fear", curves, relax, DFEW_CLASSES, shared_apex=True)
    # Rest (all 0) and apex (all 1) are frames Surprise shows too; eyes far ahead of the mouth are not.
    assert got.tolist() == [False, True, True, False, False]


def test_surprise_parts_half_way_together_are_evidence_against_fear():
    curves = curves_of([{}, {BROWS: 0.5, EYES: 0.5, MOUTH: 0.5}, {BROWS: 1.0, EYES: 1.0, MOUTH: 1.0}])
    got = evidence_frames("Surprise", curves, np.ones(3), DFEW_CLASSES, shared_apex=True)
    assert got.tolist() == [False, True, False]


def test_relaxed_apex_is_not_evidence():
    # After the apex every part relaxes alike: curves 0.4 everywhere, relax 0.4 -> the apex face.
    curves = curves_of([{BROWS: 0.4, EYES: 0.4, MOUTH: 0.4}])
    assert not evidence_frames("Surprise", curves, np.array([0.4]), DFEW_CLASSES, shared_apex=True).any()
    assert evidence_frames("Surprise", curves, np.array([1.0]), DFEW_CLASSES, shared_apex=True).all()


def test_other_classes_evidence_is_visible_activity_and_neutral_has_none():
    curves = curves_of([{}, {GROUPS.index("mouth"): 0.05}, {GROUPS.index("mouth"): 0.3}])
    assert evidence_frames("Happy", curves, np.ones(3), DFEW_CLASSES, shared_apex=True).tolist() == [False, False, True]
    assert not evidence_frames("Neutral", curves, np.ones(3), DFEW_CLASSES, shared_apex=True).any()


@pytest.fixture(scope="module")
def medium_set(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("timeline") / "d", clips=14, preset="medium", seed=3, size=32)


def test_written_beside_masks_and_consistent_with_them(medium_set):
    meta = load_meta(medium_set)
    for row in meta["clips"]:
        timeline = load_clip_timeline(medium_set, row["video_id"])
        masks, apex = load_clip_masks(medium_set, row["video_id"])
        assert timeline.curves.shape == (row["length"], len(GROUPS)) and timeline.parts == GROUPS
        assert timeline.evidence.shape == timeline.relax.shape == timeline.blink.shape == (row["length"],)
        assert np.all((timeline.curves >= 0) & (timeline.curves <= 1 + 1e-6))
        if row["label_name"] == "Neutral":
            assert not timeline.evidence.any() and not timeline.curves.any()
        else:
            # The apex frame is where the parts have gone furthest.
            assert timeline.curves.sum(axis=1).argmax() == apex or np.isclose(
                timeline.curves.sum(axis=1)[apex], timeline.curves.sum(axis=1).max())
        if row["label_name"] in ("Fear", "Surprise", "Angry", "Disgust"):
            assert timeline.nearest == {"Fear": "Surprise", "Surprise": "Fear", "Angry": "Disgust",
                                        "Disgust": "Angry"}[row["label_name"]]


def test_same_seed_same_bytes(medium_set, tmp_path):
    again = generate_dataset(tmp_path / "again", clips=14, preset="medium", seed=3, size=32)
    for path in sorted((medium_set / "synthetic" / "temporal").iterdir()):
        assert (again / "synthetic" / "temporal" / path.name).read_bytes() == path.read_bytes()


def test_missing_timeline_is_one_line_naming_the_file(medium_set, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(medium_set, copy)
    shutil.rmtree(copy / "synthetic" / "temporal")
    with pytest.raises(SynthError, match=r"temporal/00001.npz not found.*render it again"):
        load_clip_timeline(copy, "00001")


def test_order_preset_pair_moves_the_same_parts_in_swapped_order(tmp_path):
    """`order`: Surprise moves its upper face first, Fear its mouth first, on one shared face; each
    movement comes and goes; every transition frame is evidence (its history tells the order)."""
    from tdrag.data.synthetic import render_clip

    root = generate_dataset(tmp_path / "o", clips=14, preset="order", seed=1, size=32)
    meta = load_meta(root)
    assert meta["preset_settings"]["timing"] == "order"
    firsts = {}
    for row in meta["clips"]:
        if row["label_name"] not in ("Surprise", "Fear"):
            continue
        curves = load_clip_timeline(root, row["video_id"]).curves
        upper, mouth = curves[:, BROWS], curves[:, MOUTH]
        assert upper[-1] == 0 and mouth[-1] == 0  # both movements are over by the clip's end
        assert not ((upper > 0) & (mouth > 0)).any()  # and never at the same time
        if upper.max() > 0 and mouth.max() > 0:  # (a held run may freeze the video over a whole movement)
            first = "upper" if np.argmax(upper > 0) < np.argmax(mouth > 0) else "mouth"
            assert firsts.setdefault(row["label_name"], first) == first
    assert firsts == {"Surprise": "upper", "Fear": "mouth"}


def test_presets_without_a_timing_keep_their_meta_bytes(medium_set):
    assert "timing" not in load_meta(medium_set)["preset_settings"]
