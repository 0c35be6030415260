"""tdrag.train.fit: a CPU run end to end, exact resume, NaN stop, validation split, re-evaluation."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from tdrag import metrics
from tdrag.config import load_config
from tdrag.data.cache import open_cache
from tdrag.data.labels import DFEW_CLASSES
from tdrag.models.forward import forward_clips
from tdrag.models.registry import load_model
from tdrag.runs.checkpoints import load_checkpoint
from tdrag.runs.layout import RunExistsError
from tdrag.train import losses
from tdrag.train.engine import TrainingDiverged
from tdrag.train.evaluate import evaluate_run
from tdrag.train.fit import fit
from tests.run_fixtures import tiny_config

TIMING_COLUMNS = ("epoch_seconds", "clips_per_second")


def _read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _deterministic(rows):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def test_two_epoch_run_writes_a_complete_run_dir(tiny_run, tiny_cache):
    for name in ("config.yaml", "log.csv", "checkpoints/last.pt", "checkpoints/best.pt", "predictions.csv",
                 "report/metrics.json", "report/per_class_recall.csv", "report/per_class_recall.md",
                 "report/confusion_matrix.csv", "report/predictions_last.csv"):
        assert (tiny_run / name).is_file(), name
    assert not list(tiny_run.rglob("*.tmp")), "temporary files left behind"

    log_rows = _read_csv(tiny_run / "log.csv")
    assert [int(r["epoch"]) for r in log_rows] == [1, 2]
    assert list(log_rows[0]) == ["epoch", "train_loss", "train_acc", "test_war", "test_uar", "lr",
                                 "epoch_seconds", "clips_per_second"]
    assert all(float(r["clips_per_second"]) > 0 for r in log_rows)

    # predictions.csv: every test clip of fold 1 exactly once, probabilities summing to 1.
    cache = open_cache(tiny_cache.cache)
    test_rows = cache.rows(1, "test")
    preds = _read_csv(tiny_run / "predictions.csv")
    assert list(preds[0]) == ["video_id", "label", "prediction", *[f"prob_{c}" for c in DFEW_CLASSES]]
    assert sorted(p["video_id"] for p in preds) == sorted(cache.video_ids[r] for r in test_rows)
    probs = np.array([[float(p[f"prob_{c}"]) for c in DFEW_CLASSES] for p in preds])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    labels = np.array([int(p["label"]) for p in preds])
    predicted = np.array([int(p["prediction"]) for p in preds])
    assert (predicted == probs.argmax(axis=1)).all()
    expected_labels = {cache.video_ids[r]: int(cache.labels[r]) for r in test_rows}
    assert all(expected_labels[p["video_id"]] == int(p["label"]) for p in preds)

    # The report's figures are those of predictions.csv, and both epochs are labelled.
    report = json.loads((tiny_run / "report" / "metrics.json").read_text())
    best = report["best"]
    assert best["test"]["war"] == pytest.approx(metrics.war(labels, predicted, 7))
    assert best["test"]["uar"] == pytest.approx(metrics.uar(labels, predicted, 7))
    assert report["last"]["label"] == "last epoch" and report["last"]["epoch"] == 2
    assert "optimistic" in best["label"] and report["selection"]["optimistic"] is True
    assert "optimistic" in (tiny_run / "report" / "per_class_recall.md").read_text()
    best_war_in_log = max(float(r["test_war"]) for r in log_rows)
    assert best["test"]["war"] == pytest.approx(best_war_in_log, abs=1e-5)
    assert float(log_rows[best["epoch"] - 1]["test_war"]) == pytest.approx(best_war_in_log, abs=1e-5)
    last_war = metrics.war(*[np.array([int(p[k]) for p in _read_csv(tiny_run / "report/predictions_last.csv")])
                             for k in ("label", "prediction")], 7)
    assert float(log_rows[-1]["test_war"]) == pytest.approx(last_war, abs=1e-5)

    # The confusion matrix CSV matches the predictions.
    cm_rows = _read_csv(tiny_run / "report" / "confusion_matrix.csv")
    counts = np.array([[int(r[c]) for c in DFEW_CLASSES] for r in cm_rows])
    np.testing.assert_array_equal(counts, metrics.confusion_matrix(labels, predicted, 7))

    # The saved model reproduces the saved probabilities.
    model, config = load_model(tiny_run, which="best")
    assert config == load_config(tiny_run / "config.yaml")
    clips = torch.from_numpy(np.array(cache.frames[test_rows]))
    again = torch.softmax(forward_clips(model, [(clips,)], crop=config.data.crop)[0].logits, dim=1).numpy()
    by_id = {p["video_id"]: i for i, p in enumerate(preds)}
    order = [by_id[cache.video_ids[r]] for r in test_rows]
    np.testing.assert_allclose(again, probs[order], atol=1e-5)


def test_run_killed_after_epoch_1_and_resumed_equals_uninterrupted(tiny_run, tiny_cache, tmp_path):
    config = tiny_config(tiny_cache, tmp_path / "run")

    def kill_after_first_epoch(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        fit(config, callback=kill_after_first_epoch, progress=False)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["epoch"] == 1
    with pytest.raises(RunExistsError, match="--resume"):
        fit(config, progress=False)
    seen = []
    fit(config, callback=seen.append, resume=True, progress=False)
    assert [row["epoch"] for row in seen] == [2]

    # Same seed, same config: the resumed run ends with exactly the uninterrupted run's weights.
    ours = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    reference = load_checkpoint(tiny_run / "checkpoints" / "last.pt")
    assert ours["model"].keys() == reference["model"].keys()
    for key, value in reference["model"].items():
        assert torch.equal(ours["model"][key], value), key
    assert _deterministic(_read_csv(tmp_path / "run" / "log.csv")) == _deterministic(_read_csv(tiny_run / "log.csv"))
    assert (tmp_path / "run" / "predictions.csv").read_text() == (tiny_run / "predictions.csv").read_text()


def test_run_killed_mid_epoch_resumes_exactly(tiny_run, tiny_cache, tmp_path, monkeypatch):
    import tdrag.data.augment as augment

    config = tiny_config(tiny_cache, tmp_path / "run")
    original = augment.train_transform
    calls = {"n": 0}
    steps_per_epoch = -(-len(open_cache(tiny_cache.cache).rows(1, "train")) // config.train.batch_size)

    def dies_in_epoch_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:
            raise KeyboardInterrupt("killed mid-epoch")
        return original(*args, **kwargs)

    monkeypatch.setattr(augment, "train_transform", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(config, progress=False)
    monkeypatch.setattr(augment, "train_transform", original)
    fit(config, resume=True, progress=False)
    ours = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    reference = load_checkpoint(tiny_run / "checkpoints" / "last.pt")["model"]
    for key, value in reference.items():
        assert torch.equal(ours[key], value), key


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tiny_cache, tmp_path, monkeypatch):
    config = tiny_config(tiny_cache, tmp_path / "run")
    steps_per_epoch = -(-len(open_cache(tiny_cache.cache).rows(1, "train")) // config.train.batch_size)
    original = torch.nn.functional.cross_entropy
    calls = {"n": 0}

    def nan_in_epoch_2(logits, labels, **kwargs):
        calls["n"] += 1
        loss = original(logits, labels, **kwargs)
        return loss * float("nan") if calls["n"] > steps_per_epoch else loss

    monkeypatch.setattr(losses.F, "cross_entropy", nan_in_epoch_2)
    with pytest.raises(TrainingDiverged, match=r"non-finite training loss at epoch 2, step 1/") as info:
        fit(config, progress=False)
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert str(last) in str(info.value)
    state = load_checkpoint(last)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert len(_read_csv(tmp_path / "run" / "log.csv")) == 1


def test_huge_learning_rate_diverges_cleanly(tiny_cache, tmp_path):
    config = tiny_config(tiny_cache, tmp_path / "run", optimizer="sgd", lr=1e30, warmup_epochs=0, epochs=1)
    with pytest.raises(TrainingDiverged, match="epoch 1") as info:
        fit(config, progress=False)
    assert "no epoch finished" in str(info.value)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_validation_split_selects_on_val_and_logs_it(tiny_cache, tmp_path):
    from tdrag.config import replace

    config = replace(tiny_config(tiny_cache, tmp_path / "run", epochs=1), data={"val_fraction": 0.2})
    result = fit(config, progress=False)
    row = _read_csv(tmp_path / "run" / "log.csv")[0]
    assert row["val_war"] != "" and row["val_uar"] != ""
    report = result.metrics
    assert report["selection"] == {**report["selection"], "split": "val", "optimistic": False}
    assert "val" in report["best"] and "optimistic" not in report["best"]["label"]
    cache = open_cache(tiny_cache.cache)
    assert report["num_train_clips"] + report["num_val_clips"] == len(cache.rows(1, "train"))
    assert report["best"]["val"]["num_clips"] == report["num_val_clips"] > 0


def test_evaluate_run_rewrites_the_report(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = json.loads((run / "report" / "metrics.json").read_text())
    shutil.rmtree(run / "report")
    (run / "predictions.csv").unlink()
    after = evaluate_run(run, device="cpu", progress=False)
    assert (run / "predictions.csv").is_file() and (run / "report" / "per_class_recall.md").is_file()
    for name in ("last", "best"):
        assert after[name]["epoch"] == before[name]["epoch"]
        assert after[name]["test"]["war"] == pytest.approx(before[name]["test"]["war"])
        assert after[name]["test"]["confusion_matrix"] == before[name]["test"]["confusion_matrix"]


def test_cache_that_does_not_match_the_config_is_refused(tiny_cache, tmp_path):
    from tdrag.config import replace

    config = replace(tiny_config(tiny_cache, tmp_path / "run"), data={"keyframes": "uniform"})
    with pytest.raises(ValueError, match="data.keyframes: 'uniform'.*keyframes='redundancy'"):
        fit(config, progress=False)
    config = replace(tiny_config(tiny_cache, tmp_path / "run"), data={"frames": 16})
    with pytest.raises(ValueError, match="data.frames: 16.*T=8"):
        fit(config, progress=False)


def test_cache_of_an_older_keyframe_rule_is_refused(tiny_cache, tmp_path):
    from tdrag.config import replace
    from tests.run_fixtures import TinyData

    manifest = json.loads((tiny_cache.cache / "manifest.json").read_text())
    assert manifest["settings"]["keyframe_rule"] == 2
    old = tmp_path / "old_cache"
    shutil.copytree(tiny_cache.cache, old)
    del manifest["settings"]["keyframe_rule"]  # as written before rules were versioned (the greedy rule)
    (old / "manifest.json").write_text(json.dumps(manifest))
    config = tiny_config(TinyData(root=tiny_cache.root, cache=old), tmp_path / "run")
    with pytest.raises(ValueError, match="version 1 of the 'redundancy' keyframe rule.*version 2.*--overwrite"):
        fit(config, progress=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.gpu
def test_cuda_run_with_bf16_autocast_and_channels_last(tiny_cache, tmp_path):
    config = tiny_config(tiny_cache, tmp_path / "run", device="cuda", amp=True, channels_last=True, epochs=1)
    result = fit(config, progress=False)
    assert np.isfinite(result.history[0]["train_loss"]) and result.history[0]["test_war"] is not None
    model, _ = load_model(tmp_path / "run", device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    again = evaluate_run(tmp_path / "run", device="cuda", progress=False)
    assert again["last"]["test"]["num_clips"] == result.metrics["last"]["test"]["num_clips"]
