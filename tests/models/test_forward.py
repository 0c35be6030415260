"""tdrag.models.forward.forward_clips: the one loop over clips (transform, eval mode, autocast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tdrag.data.augment import eval_transform
from tdrag.models.forward import forward_clips
from tdrag.models.registry import build_model

T, S, CROP = 8, 36, 32


def _model(name: str = "tdrag") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, width=8, head={"hidden": 16})


def _clips(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, T, S, S, 3), dtype=np.uint8)


def test_batches_give_what_the_whole_set_gives_by_hand():
    model = _model().eval()
    clips = _clips(5)
    batches = [(torch.from_numpy(clips[:2]), np.array([3, 1]), np.array([10, 11])),
               (clips[2:], [0, 6, 2], [12, 13, 14])]  # numpy clips and plain lists pass too
    seen, (labels, rows) = forward_clips(model, batches, crop=CROP, inspect=True)
    with torch.no_grad():
        whole = model.inspect(eval_transform(torch.from_numpy(clips), crop=CROP))
    torch.testing.assert_close(seen.logits, whole.logits, rtol=1e-4, atol=1e-5)
    assert set(seen.attention) == set(whole.attention) == {"layer2", "layer3", "layer4"}
    for stage, maps in whole.attention.items():
        torch.testing.assert_close(seen.attention[stage], maps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(seen.hidden_states, whole.hidden_states, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(seen.step_logits, whole.step_logits, rtol=1e-4, atol=1e-5)
    assert labels.tolist() == [3, 1, 0, 6, 2] and rows.tolist() == [10, 11, 12, 13, 14]
    for t in (seen.logits, seen.hidden_states, *seen.attention.values()):
        assert t.device.type == "cpu" and t.dtype == torch.float32 and not t.requires_grad


def test_logits_only_unless_inspecting_and_attention_can_be_dropped():
    model = _model().eval()
    plain, extras = forward_clips(model, [(_clips(2),)], crop=CROP)
    assert plain.attention == {} and plain.hidden_states is None and extras == []
    with torch.no_grad():
        torch.testing.assert_close(plain.logits, model(eval_transform(torch.from_numpy(_clips(2)), crop=CROP)),
                                   rtol=1e-4, atol=1e-5)
    lean, _ = forward_clips(model, [(_clips(2),)], crop=CROP, inspect=True, keep_attention=False)
    assert lean.attention == {} and lean.hidden_states is not None
    with pytest.raises(ValueError, match="no batches"):
        forward_clips(model, [], crop=CROP)


def test_each_module_gets_its_own_mode_back():
    model = _model().train()
    model.layer1.eval()  # a mixed-mode model (e.g. frozen BatchNorm) keeps its mix
    modes = {name: m.training for name, m in model.named_modules()}
    before = [b.clone() for b in model.buffers()]
    forward_clips(model, [(_clips(2),)], crop=CROP, inspect=True)
    assert {name: m.training for name, m in model.named_modules()} == modes
    # Evaluated in eval mode: BatchNorm's running statistics did not move.
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))


@pytest.mark.gpu
def test_on_cuda_with_autocast_outputs_come_back_float32_on_the_cpu():
    model = _model().cuda().eval()
    cpu, _ = forward_clips(_model().eval(), [(_clips(3),)], crop=CROP, inspect=True)
    for amp in (False, True):
        seen, _ = forward_clips(model, [(_clips(3),)], crop=CROP, device="cuda", amp=amp, channels_last=True,
                                inspect=True)
        for t in (seen.logits, seen.hidden_states, *seen.attention.values()):
            assert t.device.type == "cpu" and t.dtype == torch.float32 and torch.isfinite(t).all()
        if not amp:
            torch.testing.assert_close(seen.logits, cpu.logits, rtol=1e-2, atol=1e-2)
