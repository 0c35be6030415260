"""tdrag.runs.predictions: the class names travel in the prob_<Class> columns, written and read back."""

from __future__ import annotations

import numpy as np

from tdrag.data.labels import MAFW_CLASSES
from tdrag.runs.predictions import Predictions, class_names_of, read_predictions, write_predictions


def test_class_names_written_and_read_back_from_the_columns(tmp_path):
    n = len(MAFW_CLASSES)
    probs = np.eye(n, dtype=np.float32)[::-1]  # clip i predicted as class n-1-i
    preds = Predictions(rows=np.arange(n), video_ids=[f"v{i}" for i in range(n)], labels=np.arange(n),
                        probabilities=probs)
    path = tmp_path / "predictions.csv"
    write_predictions(path, preds, MAFW_CLASSES)
    header = path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["video_id", "label", "prediction"]
    assert class_names_of(header) == list(MAFW_CLASSES)
    ids, labels, predicted = read_predictions(path)  # the names bound the indices: 0..10
    assert ids == [f"v{i}" for i in range(n)] and labels.tolist() == list(range(n))
    assert predicted.tolist() == list(range(n))[::-1]
    assert class_names_of(["video_id", "label", "prediction"]) == []
