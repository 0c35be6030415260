"""Temporal agreement: evidence keyframes from the renderer, each view's per-keyframe importance,
AUROC against scikit-learn, on a hand-made model whose importance is known and on a real TDRAG."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from analysis.internals.run import Run
from analysis.attribution.temporal import (
    DECISION_STEP,
    FRAME_ABLATION,
    GRU_GAIN,
    auroc_per_clip,
    evidence_keyframes,
    expressive_prior,
    gru_gain,
    keyframe_importance,
    scoreable,
    steps_to_keyframes,
    temporal_agreement,
)
from tdrag.models.inspection import ModelInspection


class LastKeyframe(nn.Module):
    """Reads only the last keyframe: logit c = (c + 1) * its mean (normalised) value."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.arange(1.0, classes + 1.0), requires_grad=False)

    def forward(self, x):
        return x[:, :, -1].mean(dim=(1, 2, 3))[:, None] * self.weights[None]

    def inspect(self, x):
        return ModelInspection(logits=self(x))


@pytest.fixture(scope="module")
def hand_made(tiny_run):
    from analysis import open_run

    opened = open_run(tiny_run, progress=False)
    model = LastKeyframe(opened.num_classes)
    return Run(run_dir=opened.run_dir, model=model, config=opened.config, checkpoint=opened.checkpoint,
               cache=opened.cache, split="test", rows=opened.rows, labels=opened.labels, video_ids=opened.video_ids,
               class_names=opened.class_names, device=opened.device, data_root=opened.data_root,
               synthetic=True, progress=False)


def test_evidence_keyframes_are_the_timeline_at_the_source_frames(tiny_cache):
    from tdrag.data.cache import open_cache
    from tdrag.data.synthetic import load_clip_timeline

    cache = open_cache(tiny_cache.cache)
    got = evidence_keyframes(cache, [0, 3], tiny_cache.root)
    for b, row in enumerate([0, 3]):
        entry = cache.index[row]
        truth = load_clip_timeline(tiny_cache.root, entry["video_id"]).evidence
        assert got[b].tolist() == [bool(truth[f]) for f in entry["source_frames"]]


def test_auroc_per_clip_matches_scikit_learn():
    rng = np.random.default_rng(0)
    importance = rng.normal(size=(6, 8)).round(1)  # ties included
    evidence = rng.random((6, 8)) < 0.4
    evidence[0] = False  # nothing to detect: skipped
    got = auroc_per_clip(importance, evidence)
    assert np.isnan(got[0]) and not scoreable(evidence)[0]
    for b in range(1, 6):
        if scoreable(evidence)[b]:
            assert got[b] == pytest.approx(roc_auc_score(evidence[b], importance[b]))


def test_steps_gain_and_prior_by_hand():
    assert steps_to_keyframes(np.array([[1.0, 2.0]]), 4).tolist() == [[1.0, 1.0, 2.0, 2.0]]
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]))  # (1, 2 steps, 2 classes)
    assert gru_gain(logits, [0]) == pytest.approx(np.array([[0.0, 0.4]]))
    assert gru_gain(logits, [1]) == pytest.approx(np.array([[0.0, -0.4]]))
    clips = np.zeros((1, 5, 2, 2, 3), np.uint8)
    clips[0, 3] = 50
    assert expressive_prior(clips).tolist() == [[-3, -2, -1, 0, -1]]


def test_frame_ablation_of_a_last_keyframe_reader_is_known(hand_made):
    positions = np.arange(len(hand_made))
    got = keyframe_importance(hand_made, positions, [FRAME_ABLATION])[FRAME_ABLATION]
    x = hand_made.inputs(positions)
    expected = np.zeros_like(got)
    # Ablating the last keyframe to the baseline (0) removes (y + 1) * its mean; the others remove nothing.
    expected[:, -1] = (hand_made.labels + 1) * x[:, :, -1].mean(dim=(1, 2, 3)).numpy()
    assert got == pytest.approx(expected, abs=1e-5)


def test_agreement_table_against_scikit_learn(hand_made):
    table = temporal_agreement(hand_made, views=[FRAME_ABLATION])
    positions = np.arange(len(hand_made))
    evidence = evidence_keyframes(hand_made.cache, hand_made.rows, hand_made.data_root)
    keep = scoreable(evidence)
    assert keep.any(), "the tiny set should have clips with evidence and non-evidence keyframes"
    importance = keyframe_importance(hand_made, positions[keep], [FRAME_ABLATION])[FRAME_ABLATION]
    prior = expressive_prior(hand_made.frames(positions[keep]))
    labels = hand_made.labels[keep]
    per_clip = [roc_auc_score(e, i) for e, i in zip(evidence[keep], importance)]
    per_clip_prior = [roc_auc_score(e, p) for e, p in zip(evidence[keep], prior)]
    everything = table[table["class"] == "all"].iloc[0]
    assert everything.clips == keep.sum()
    assert everything.auroc == pytest.approx(np.mean(per_clip))
    assert everything.prior_auroc == pytest.approx(np.mean(per_clip_prior))
    for c in np.unique(labels):
        row = table[table["class"] == hand_made.class_names[c]].iloc[0]
        assert row.clips == (labels == c).sum()
        assert row.auroc == pytest.approx(np.mean(np.asarray(per_clip)[labels == c]))


def test_every_view_of_a_real_tdrag(tiny_run):
    from analysis import open_run

    run = open_run(tiny_run, progress=False)
    table = temporal_agreement(run, small=True)
    views = set(table.view)
    assert {FRAME_ABLATION, "integrated gradients", GRU_GAIN, DECISION_STEP} <= views
    assert {f"attention {s}" for s in run.attention} <= views
    assert table.auroc.between(0, 1).all() and table.prior_auroc.between(0, 1).all()
    assert list(table.columns) == ["class", "view", "auroc", "prior_auroc", "clips"]


def test_no_temporal_truth_is_one_clear_error(hand_made, tmp_path):
    from dataclasses import replace

    with pytest.raises(ValueError, match="no synthetic temporal ground truth"):
        temporal_agreement(replace(hand_made, data_root=tmp_path))
