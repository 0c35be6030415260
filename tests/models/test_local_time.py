"""ModelConfig.local_time: layer4's step s reads only its own keyframes, so only the GRU reads order."""

from __future__ import annotations

import pytest
import torch

from tdrag.config import ConfigError, ModelConfig, load_config
from tdrag.models.resnet3d import make_conv3d
from tests.models.signal_models import signal_model


def _model(variant: str, local: bool, strides=(1, 2, 1, 1), seed: int = 0):
    model = signal_model(variant, seed, local_time=local, temporal_strides=strides)
    with torch.no_grad():  # and a GRU branch that is not zero at the start
        for p in model.head.parameters():
            p.normal_(0, 0.2)
    return model


def test_local_conv_has_the_stride_as_its_temporal_kernel_and_no_temporal_padding():
    plain = make_conv3d(4, 6, 3, stride=(2, 1, 1), padding=1, time="local")
    assert plain.kernel_size == (2, 3, 3) and plain.padding == (0, 1, 1)
    assert make_conv3d(4, 6, 3, padding=1, time="local").kernel_size == (1, 3, 3)
    with pytest.raises(ValueError, match="time must be one of"):
        make_conv3d(4, 6, 3, time="sideways")


@pytest.mark.parametrize("strides", [(1, 2, 1, 1), (1, 1, 1, 1), (1, 2, 2, 1)])
def test_changing_one_steps_keyframes_moves_that_step_alone(strides):
    model = _model("tdrag", True, strides)
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        before = model.features(x)
        span = model.step_frames
        steps = before.shape[2]
        assert steps == 16 // span
        for step in range(steps):
            y = x.clone()
            y[:, :, step * span:(step + 1) * span] = torch.randn_like(y[:, :, step * span:(step + 1) * span])
            after = model.features(y)
            others = [s for s in range(steps) if s != step]
            torch.testing.assert_close(after[:, :, others], before[:, :, others], rtol=0, atol=0)
            assert not torch.allclose(after[:, :, step], before[:, :, step])


def test_without_the_gru_a_local_model_cannot_tell_the_order_of_its_steps():
    x = torch.randn(2, 3, 8, 32, 32)
    # Keyframes in blocks of one step (2 keyframes), the blocks reversed.
    reversed_steps = x.reshape(2, 3, 4, 2, 32, 32).flip(2).reshape(2, 3, 8, 32, 32)
    with torch.no_grad():
        pooled = _model("tdrag_no_gru", True)
        torch.testing.assert_close(pooled(reversed_steps), pooled(x), rtol=1e-5, atol=1e-5)
        # ...the GRU can, and so can the centred trunk alone.
        assert not torch.allclose(_model("tdrag", True)(reversed_steps), _model("tdrag", True)(x), atol=1e-4)
        centred = _model("tdrag_no_gru", False)
        assert not torch.allclose(centred(reversed_steps), centred(x), atol=1e-4)


def test_local_and_causal_time_are_exclusive():
    assert ModelConfig().local_time is False
    with pytest.raises(ConfigError, match="model.local_time"):
        load_config(None, ["model.local_time=true", "model.causal_time=true"])
