"""Video files for the tests of tdrag.predict (video, faces, inference) and `tdrag predict`.

The face video is a real photograph (scikit-image's astronaut) filmed by a panning, zooming
virtual camera (``analysis.demo_media``); the rest are the inputs a user may pass by mistake.
Frames are small (<= 160 px) so every test runs in well under a second or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.demo_media import make_demo_face_video
from tdrag.predict.video import write_video


def face_video(path: Path, frames: int = 40, size: int = 128) -> Path:
    return make_demo_face_video(path, frames=frames, size=size)


def noise_video(path: Path, frames: int = 20, size: int = 96, seed: int = 0) -> Path:
    """Uniform noise, smoothed a little so the codec keeps it: no face anywhere."""
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 256, size=(frames, size, size, 3), dtype=np.uint8)
    return write_video(path, video, fps=25.0)


def truncated_copy(source: Path, path: Path, fraction: float) -> Path:
    """The first ``fraction`` of the bytes of ``source`` (a download cut short)."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def text_file(path: Path) -> Path:
    path.write_text("this is a text file with a video's name\n")
    return path


def tiny_checkpoint(path: Path, name: str = "tdrag", keyframes: str = "redundancy", seed: int = 0,
                    dataset: str = "dfew", class_names: tuple[str, ...] | None = None) -> Path:
    """A width-8 model with random weights saved as a tdrag checkpoint: enough to run the
    prediction pipeline end to end (its probabilities mean nothing). ``dataset`` and
    ``class_names`` (stored, as training stores the cache's) set its classes; default DFEW's."""
    import torch

    from tdrag.config import Config, config_to_dict, replace
    from tdrag.models.registry import build_model_from_config
    from tdrag.runs.checkpoints import save_checkpoint

    config = replace(
        Config(),
        data={"frames": 8, "size": 64, "crop": 56, "keyframes": keyframes},
        model={"name": name, "width": 8, "gru_hidden": 16},
    )
    if class_names is not None:
        config = replace(config, data={"dataset": dataset}, model={"num_classes": len(class_names)})
    torch.manual_seed(seed)
    model = build_model_from_config(config.model)
    names = {"class_names": list(class_names)} if class_names is not None else {}
    return save_checkpoint(path, {"config": config_to_dict(config), "model": model.state_dict(), **names})
