"""Writing a video prediction: ``<stem>.json``, ``<stem>_overlay.mp4`` and ``<stem>_keyframes.png``,
all three or none, replacing only an earlier tdrag prediction of the same name."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tdrag.atomic import write_json
from tdrag.config import Config
from tdrag.errors import OutputError
from tdrag.predict.drawing import OVERLAY_FPS, keyframe_sheet, overlay_video_frames
from tdrag.predict.inference import VideoPrediction
from tdrag.predict.video import write_video

#: Marks the JSON ``tdrag predict`` writes, so that a later run recognises (and may replace) it.
PREDICTION_FORMAT = "tdrag-prediction"


def _check_replaceable(out_dir: Path, stem: str, names: dict[str, str]) -> None:
    """Refuse to replace files of ``stem`` in ``out_dir`` that are not a previous tdrag prediction."""
    json_path = out_dir / f"{stem}.json"
    ours = False
    if _commit_file(out_dir, stem).is_file():
        return  # a run killed while moving them into place: they are tdrag's (checked before it began)
    if json_path.exists():
        try:
            ours = json.loads(json_path.read_text()).get("format") == PREDICTION_FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise OutputError(f"{json_path}: exists and is not a tdrag prediction; refusing to replace it "
                              "(choose another --out)")
    for name in names.values():
        if (out_dir / name).exists() and not ours:
            raise OutputError(f"{out_dir / name}: exists without the tdrag prediction {json_path.name} beside it; "
                              "refusing to replace it (choose another --out)")


def _commit_file(out_dir: Path, stem: str) -> Path:
    """Present only while a prediction's files are being renamed into place (see write_prediction)."""
    return out_dir / f".{stem}.predict-commit"


def _named(class_names: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(class_names, values)}


def prediction_to_dict(
    prediction: VideoPrediction,
    config: Config,
    checkpoint: str | os.PathLike,
    outputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON written for a video: plain types only."""
    face = prediction.face
    names = prediction.class_names
    return {
        "format": PREDICTION_FORMAT,
        "video": str(prediction.path),
        "model": config.model.name,
        "checkpoint": str(checkpoint),
        "classes": list(names),
        "probabilities": _named(names, prediction.probabilities),
        "top_class": prediction.top_class,
        "top_probability": float(prediction.probabilities[prediction.top_index]),
        "aggregation": "mean of the window probabilities",
        "fps": face.fps,
        "frames": face.num_frames,
        "duration_s": face.duration,
        "face": {
            "coverage": face.coverage,
            "sampled_frames": int(face.sampled.sum()),
            "detected_frames": int(face.detected.sum()),
            "tracks": face.num_tracks,
            "detector": "OpenCV Haar cascade haarcascade_frontalface_default.xml",
        },
        "input": {
            "keyframes": config.data.keyframes,
            "frames_per_window": config.data.frames,
            "size": config.data.size,
            "crop": config.data.crop,
        },
        "attention_stage": prediction.attention_stage,
        "windows": [
            {
                "index": w.index,
                "start_s": w.start_s,
                "end_s": w.end_s,
                "start_frame": w.start_frame,
                "end_frame": w.end_frame,
                "keyframes": [int(k) for k in w.keyframes],
                "probabilities": _named(names, w.probabilities),
                "top_class": names[int(np.argmax(w.probabilities))],
            }
            for w in prediction.windows
        ],
        "outputs": outputs or {},
    }


def write_prediction(
    prediction: VideoPrediction,
    config: Config,
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    stem: str | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.json``, ``<stem>_overlay.mp4`` and ``<stem>_keyframes.png`` into ``out_dir``.

    Everything is first written into a hidden staging folder inside ``out_dir`` and renamed into
    place only when all three files exist, the JSON last (its presence means the set is complete);
    on any error the staging folder is removed and nothing new appears in ``out_dir``. While the
    renames last, a hidden ``.<stem>.predict-commit`` lists them: a run killed among them leaves
    it, and the rerun replaces those files as its own.

    Returns:
        ``{"json": path, "overlay_video": path, "keyframes_png": path}``.
    """
    out_dir = Path(out_dir)
    stem = stem or prediction.path.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {"overlay_video": f"{stem}_overlay.mp4", "keyframes_png": f"{stem}_keyframes.png"}
    _check_replaceable(out_dir, stem, names)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".predict-{stem}-", dir=out_dir))
    except OSError as exc:  # named as the folder the user chose, not the hidden staging one
        raise OutputError(f"{out_dir}: cannot write into it ({exc.strerror or exc})") from None
    try:
        write_video(staging / names["overlay_video"], overlay_video_frames(prediction), OVERLAY_FPS)
        ok, png = cv2.imencode(".png", cv2.cvtColor(keyframe_sheet(prediction), cv2.COLOR_RGB2BGR))
        if not ok:
            raise OSError(f"{out_dir / names['keyframes_png']}: PNG encoding failed")
        (staging / names["keyframes_png"]).write_bytes(png.tobytes())
        write_json(staging / f"{stem}.json", prediction_to_dict(prediction, config, checkpoint, outputs=names))
        paths = {key: out_dir / name for key, name in names.items()}
        # Three renames are not one: a kill among them would leave media without their JSON, which
        # the rerun could not tell from a user's files. This file tells it while the renames last.
        commit = _commit_file(out_dir, stem)
        commit.write_text(json.dumps(sorted([*names.values(), f"{stem}.json"])) + "\n")
        for key, path in paths.items():
            os.replace(staging / path.name, path)
        paths["json"] = out_dir / f"{stem}.json"
        os.replace(staging / f"{stem}.json", paths["json"])
        commit.unlink()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"json": paths["json"], **{k: v for k, v in paths.items() if k != "json"}}
