"""Synthetic DFEW-format data: faces drawn with OpenCV, with ground-truth signal masks.

Modules, from the bottom up:

- ``faces``: one face on a canvas (identity, expression parameters, part masks).
- ``regions``: the facial-region label maps (``REGIONS``: outside, face, the five parts, occluder,
  distractor) drawn beside the masks.
- ``presets``: the difficulty ladder (``SynthPreset``, ``PRESETS``).
- ``clips``: one clip (class dynamics from onset to apex, pose, light, occluders, held runs).
- ``timeline``: the temporal ground truth (each part's curve per frame, the evidence frames).
- ``dataset``: a whole data set written in DFEW's layout, and its readers (meta, masks).

The names below are the public API; ``from tdrag.data.synthetic import generate_dataset``.
"""

from tdrag.data.synthetic.dataset import (
    FORMAT,
    SynthClip,
    SynthError,
    assign_labels_and_folds,
    clip_rng,
    generate_dataset,
    get_preset,
    is_synthetic_root,
    load_clip_masks,
    load_clip_regions,
    load_clip_timeline,
    load_meta,
    render_clip,
    video_id,
)
from tdrag.data.synthetic.presets import PRESETS, SynthPreset
from tdrag.data.synthetic.regions import REGIONS

__all__ = [
    "FORMAT",
    "PRESETS",
    "REGIONS",
    "SynthClip",
    "SynthError",
    "SynthPreset",
    "assign_labels_and_folds",
    "clip_rng",
    "generate_dataset",
    "get_preset",
    "is_synthetic_root",
    "load_clip_masks",
    "load_clip_regions",
    "load_clip_timeline",
    "load_meta",
    "render_clip",
    "video_id",
]
