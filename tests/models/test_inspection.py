"""tdrag.models.inspection: the ModelInspection dataclass."""

from __future__ import annotations

import torch

from tdrag.models.inspection import ModelInspection


def test_defaults_are_empty():
    seen = ModelInspection(logits=torch.zeros(2, 7))
    assert seen.attention == {} and seen.hidden_states is None and seen.step_logits is None
    # Each instance gets its own dict.
    seen.attention["layer2"] = torch.zeros(1)
    assert ModelInspection(logits=torch.zeros(2, 7)).attention == {}


def test_cpu_detaches_and_converts_to_float32():
    w = torch.ones(2, 7, requires_grad=True)
    seen = ModelInspection(
        logits=(w * 2).bfloat16(),
        attention={"layer4": torch.full((2, 1, 2, 3, 3), 0.5, requires_grad=True)},
        hidden_states=torch.ones(2, 4, 8, dtype=torch.bfloat16),
        step_logits=None,
    )
    out = seen.cpu()
    assert out.logits.dtype == torch.float32 and not out.logits.requires_grad
    assert torch.equal(out.logits, torch.full((2, 7), 2.0))
    assert not out.attention["layer4"].requires_grad
    assert out.hidden_states.dtype == torch.float32
    assert out.step_logits is None
    # The original keeps its graph.
    assert seen.logits.requires_grad
