"""ModelConfig.causal_time: GRU step s depends only on the keyframes up to the last one it covers."""

from __future__ import annotations

import pytest
import torch

from tdrag.models.resnet3d import CausalConv3d
from tests.models.signal_models import signal_model


def _model(causal: bool, strides=(1, 2, 1, 1), seed: int = 0):
    return signal_model("tdrag", seed, causal_time=causal, temporal_strides=strides)


@pytest.mark.parametrize("strides", [(1, 2, 1, 1), (1, 1, 1, 1), (1, 2, 2, 1)])
def test_changing_later_frames_leaves_earlier_steps_unchanged(strides):
    model = _model(True, strides)
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        before = model.inspect(x)
        span = model.step_frames
        steps = before.step_logits.shape[1]
        assert steps == 16 // span
        for cut in range(1, steps):
            y = x.clone()
            y[:, :, cut * span:] = torch.randn_like(y[:, :, cut * span:])
            after = model.inspect(y)
            # Steps before `cut` cover only unchanged keyframes: bit-for-bit the same.
            torch.testing.assert_close(after.step_logits[:, :cut], before.step_logits[:, :cut], rtol=0, atol=0)
            torch.testing.assert_close(after.hidden_states[:, :cut], before.hidden_states[:, :cut], rtol=0, atol=0)
            for name, m in after.attention.items():
                stage_span = 16 // m.shape[2]
                kept = cut * span // stage_span
                torch.testing.assert_close(m[:, :, :kept], before.attention[name][:, :, :kept], rtol=0, atol=0)
            # ...and the step that covers the changed frames does move.
            assert not torch.allclose(after.step_logits[:, cut], before.step_logits[:, cut])


def test_without_causal_time_an_early_step_sees_the_last_frames():
    model = _model(False)
    x = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        before = model.inspect(x).step_logits
        y = x.clone()
        y[:, :, -2:] = torch.randn_like(y[:, :, -2:])
        after = model.inspect(y).step_logits
    # Step 0 covers keyframes 0-1 only, yet moves: centred kernels spread the change everywhere.
    assert not torch.allclose(after[:, 0], before[:, 0])


def test_causal_convolutions_keep_weight_shapes_and_state_dict_names():
    plain, causal = _model(False), _model(True)
    assert plain.state_dict().keys() == causal.state_dict().keys()
    for key, value in plain.state_dict().items():
        assert causal.state_dict()[key].shape == value.shape, key
    convs = [m for m in causal.modules() if isinstance(m, CausalConv3d)]
    assert convs and all(m.time_pad == m.kernel_size[0] - m.stride[0] for m in convs)
    assert not any(isinstance(m, CausalConv3d) for m in plain.modules())
    causal.load_state_dict(plain.state_dict())  # interchangeable


def test_causal_conv_pads_the_past_with_zeros():
    conv = CausalConv3d(1, 1, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 10.0, 100.0]).view(1, 1, 3, 1, 1))
    x = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 4, 1, 1)
    # out[t] = 1 * x[t-2] + 10 * x[t-1] + 100 * x[t], zeros before the clip.
    assert conv(x).flatten().tolist() == [100.0, 210.0, 321.0, 432.0]
    strided = CausalConv3d(1, 1, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0), bias=False)
    with torch.no_grad():
        strided.weight.copy_(conv.weight)
    # Two output steps, the second seeing frames up to 3 (the last one it covers), none later.
    assert strided(x).flatten().tolist() == [1 * 0 + 10 * 1 + 100 * 2, 1 * 2 + 10 * 3 + 100 * 4]
