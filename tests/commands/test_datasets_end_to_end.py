"""FERV39k and MAFW end to end: `tdrag synth --layout` -> `tdrag prepare --dataset` -> `tdrag
train` -> `python -m analysis report`, with each dataset's own class list and order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from analysis.__main__ import main as analysis_main
from tdrag.cli import main
from tdrag.data.labels import FERV39K_CLASSES, MAFW_CLASSES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

CASES = [
    # (layout, classes, clips: enough for every class in train and test)
    ("mafw", MAFW_CLASSES, 66),
    ("ferv39k", FERV39K_CLASSES, 42),
]


@pytest.mark.parametrize(("layout", "classes", "clips"), CASES, ids=[c[0] for c in CASES])
def test_synth_prepare_train_report(layout, classes, clips, tmp_path, capsys):
    data, cache, run = tmp_path / "data", tmp_path / "cache", tmp_path / "run"
    assert main(["synth", "--out", str(data), "--layout", layout, "--clips", str(clips), "--size", "32",
                 "--workers", "1", "--no-progress"]) == 0
    assert f"--dataset {layout}" in capsys.readouterr().out
    assert main(["prepare", "--dataset", layout, "--root", str(data), "--out", str(cache), "--frames", "6",
                 "--size", "32", "--keyframes", "uniform", "--workers", "1", "--no-progress"]) == 0
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["dataset"] == layout and manifest["classes"] == list(classes)
    assert not manifest["skipped"]
    ids = [row["video_id"] for row in json.loads((cache / "index.json").read_text())]
    assert len(ids) == clips
    if layout == "ferv39k":
        assert all(vid.count("/") == 2 for vid in ids)  # <Scene>/<Class>/<nnnn>

    # The shipped recipe (its data.dataset and model.num_classes), made tiny.
    assert main(["train", "--config", str(CONFIGS / f"{layout}_tdrag.yaml"), "--no-progress", f"data.root={data}",
                 f"data.cache={cache}", "data.fold=1", "data.frames=6", "data.size=32", "data.crop=32",
                 "data.num_workers=0", "data.keyframes=uniform", "model.width=8", "model.gru_hidden=16",
                 f"train.run_dir={run}", "train.epochs=2", "train.batch_size=8", "train.optimizer=adamw",
                 "train.lr=0.003", "train.device=cpu"]) == 0
    metrics = json.loads((run / "report" / "metrics.json").read_text())
    text = json.dumps(metrics)
    for name in classes:
        assert name in text
    with open(run / "report" / "confusion_matrix.csv", newline="") as handle:
        confusion = list(csv.reader(handle))
    assert confusion[0][1:] == list(classes)  # the dataset's order
    assert [row[0] for row in confusion[1:]] == list(classes)
    assert all(len(row) == len(classes) + 1 for row in confusion[1:])
    assert sum(int(v) for row in confusion[1:] for v in row[1:]) == len(_predicted_ids(run))

    with open(run / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[3:] == [f"prob_{name}" for name in classes]
    test_ids = {row["video_id"] for row in rows}
    assert test_ids <= set(ids) and test_ids  # ids with slashes survive the CSV

    capsys.readouterr()
    assert analysis_main(["report", str(run)]) == 0
    assert (run / "report" / "confusion_matrix.png").is_file()
    markdown = "".join(p.read_text() for p in (run / "report").glob("*.md"))
    for name in classes:
        assert name in markdown

    if layout == "mafw":
        # A notebook at SMALL size on the 11-class run, its class left to its default (the run's
        # first): MAFW's class names, not DFEW's.
        from analysis.notebook.execute import execute_notebook

        nb = execute_notebook(CONFIGS.parent / "notebooks" / "02_attention_over_keyframes.ipynb",
                              {"RUN_DIR": str(run), "SMALL": True, "DEVICE": "cpu"}, timeout=300)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"]
        shown = json.dumps([o.get("data", {}).get("text/plain", "") for o in outputs]
                           + [o.get("data", {}).get("text/html", "") for o in outputs] + [o.get("text", "") for o in outputs])
        assert classes[-1] in shown and "contempt" in shown and "Happy" not in shown


def _predicted_ids(run) -> list[str]:
    with open(run / "predictions.csv", newline="") as handle:
        return [row["video_id"] for row in csv.DictReader(handle)]
