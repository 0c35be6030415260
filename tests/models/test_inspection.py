"""tdrag.models.inspection: the ModelInspection dataclass, its CPU copies and its concatenation."""

from __future__ import annotations

import pytest
import torch

from tdrag.models.inspection import ModelInspection


def test_cat_joins_batches_along_the_batch():
    first = ModelInspection(logits=torch.tensor([[1.0, 2.0]]), attention={"layer4": torch.zeros(1, 1, 2, 3, 3)},
                            hidden_states=torch.ones(1, 4, 8), step_logits=torch.ones(1, 4, 2))
    second = ModelInspection(logits=torch.tensor([[3.0, 4.0], [5.0, 6.0]]),
                             attention={"layer4": torch.ones(2, 1, 2, 3, 3)},
                             hidden_states=torch.zeros(2, 4, 8), step_logits=torch.zeros(2, 4, 2))
    joined = ModelInspection.cat([first, second])
    assert torch.equal(joined.logits, torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert joined.attention["layer4"].shape == (3, 1, 2, 3, 3)
    assert joined.attention["layer4"].flatten(1).mean(1).tolist() == [0.0, 1.0, 1.0]
    assert joined.hidden_states[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert joined.step_logits.shape == (3, 4, 2)
    # Models without attention or GRU: nothing to join, nothing invented.
    plain = ModelInspection.cat([ModelInspection(logits=torch.zeros(2, 7)), ModelInspection(logits=torch.ones(1, 7))])
    assert plain.attention == {} and plain.hidden_states is None and plain.step_logits is None
    assert plain.logits.sum().item() == 7.0


def test_cat_refuses_parts_of_different_models():
    with_gru = ModelInspection(logits=torch.zeros(1, 2), hidden_states=torch.zeros(1, 4, 8))
    without = ModelInspection(logits=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="hidden_states is missing"):
        ModelInspection.cat([with_gru, without])
    staged = ModelInspection(logits=torch.zeros(1, 2), attention={"layer2": torch.zeros(1, 1, 2, 4, 4)})
    with pytest.raises(ValueError, match="different attention stages"):
        ModelInspection.cat([staged, without])
    with pytest.raises(ValueError, match="nothing"):
        ModelInspection.cat([])


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
