"""`tdrag predict`'s overlay shows the very map the analysis notebooks show for the same clip."""

from __future__ import annotations

import numpy as np
import torch

from analysis.internals.attention import attention_maps
from tdrag.data.augment import eval_transform
from tdrag.models.registry import load_model
from tdrag.predict.drawing import attention_overlay, overlay_frames
from tdrag.predict.faces import extract_face_clip
from tdrag.predict.inference import predict_face_clip
from tests.video_samples import face_video, tiny_checkpoint


def test_predict_overlay_map_equals_the_notebook_map(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tdrag.pt")
    model, config = load_model(checkpoint)
    # Non-trivial attention: randomise the mask branches (at init their logits are ~0, M ~ 0.5 flat).
    from tdrag.models.tdrag import ResidualAttention3d

    torch.manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, ResidualAttention3d):
                module.logits.weight.normal_(0.0, 0.5)
    face = extract_face_clip(face_video(tmp_path / "face.mp4", frames=24, size=96), size=config.data.size)
    prediction = predict_face_clip(model, config, face, window=None)
    stage = prediction.attention_stage
    clip = torch.from_numpy(face.frames[prediction.windows[0].keyframes][None])
    with torch.no_grad():
        notebook_map = attention_maps(model, eval_transform(clip, crop=config.data.crop))[stage][0].numpy()
    assert notebook_map.std() > 1e-3, "the check needs a map that is not flat"
    np.testing.assert_allclose(prediction.attention[0], notebook_map, rtol=1e-5, atol=1e-6)
    # The written overlay frames are exactly the heatmap of that map over the crops.
    np.testing.assert_array_equal(overlay_frames(prediction)[0],
                                  attention_overlay(prediction.keyframe_crops[0], notebook_map))
