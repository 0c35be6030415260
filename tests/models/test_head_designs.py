"""tdrag.models.tdrag.GRUHead and tdrag.models.head_designs: per-step pooling -> LayerNorm -> GRU -> step logits -> readout, and every design."""

from __future__ import annotations

import pytest
import torch

from tdrag.config import HeadConfig
from tdrag.models.designs import design_class
from tdrag.models.tdrag import HEADS, GRUHead, spatial_pool

#: The first head: the classifier on the last state of a GRU over the raw pooled features.
FIRST = "no_norm+last_step+no_pooled_path"


def _make(design: str = "gru", seed: int = 0, causal: bool = False, **cfg) -> GRUHead:
    torch.manual_seed(seed)
    cfg = {"hidden": 10, "dropout": 0.0, **cfg}
    return design_class(HEADS, design)(12, 5, HeadConfig(**cfg), causal=causal)


def _head(dropout: float = 0.5) -> GRUHead:
    return _make(FIRST, hidden=10, layers=2, dropout=dropout)


def test_shapes_and_last_step_equals_forward():
    head = _head().eval()
    features = torch.randn(3, 12, 6, 4, 4)
    hidden, steps, _, _ = head.forward_steps(features)
    assert hidden.shape == (3, 6, 10)
    assert steps.shape == (3, 6, 5)
    assert torch.equal(head(features), steps[:, -1])


def _step_logits_before_and_after_changing_the_last_frame(head, features):
    """``head``'s step logits ``(B, T, K)`` on ``features`` and on a copy whose last frame changed."""
    changed = features.clone()
    changed[:, :, -1] += 3
    with torch.no_grad():
        return head.forward_steps(features)[1], head.forward_steps(changed)[1]


def test_steps_are_causal():
    # Step t sees frames 0..t only: changing the last frame leaves earlier steps unchanged.
    a, b = _step_logits_before_and_after_changing_the_last_frame(_head().eval(), torch.randn(2, 12, 5, 3, 3))
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_a_causal_residual_head_pools_the_clip_so_far():
    # Under causal_time the pooled path of step s is the running mean up to s: no step reads later frames.
    head = _make(causal=True).eval()
    with torch.no_grad():
        head.project.weight.normal_()
    features = torch.randn(2, 12, 5, 3, 3)
    a, b = _step_logits_before_and_after_changing_the_last_frame(head, features)
    sequence = features.mean(dim=(3, 4)).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(head.pooled_path(sequence)[:, 2], sequence[:, :3].mean(1))
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])
    # Not causal: the pooled path is the whole clip's, the same at every step.
    head.causal = False
    torch.testing.assert_close(head.pooled_path(sequence), sequence.mean(1, keepdim=True))


def test_pooling_is_a_spatial_mean_per_step():
    head = _head().eval()
    features = torch.randn(2, 12, 5, 3, 3)
    pooled = features.mean(dim=(3, 4), keepdim=True).expand_as(features).contiguous()
    with torch.no_grad():
        torch.testing.assert_close(head(features), head(pooled))


def test_channels_last_features_give_the_same_result():
    head = _head().eval()
    features = torch.randn(2, 12, 5, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(head(features.to(memory_format=torch.channels_last_3d)), head(features))


def test_dropout_acts_in_training_only():
    head = _head(dropout=0.9)
    features = torch.randn(4, 12, 5, 3, 3)
    head.train()
    torch.manual_seed(1)
    a = head(features)
    torch.manual_seed(2)
    b = head(features)
    assert not torch.allclose(a, b)
    head.eval()
    torch.testing.assert_close(head(features), head(features))


def test_gru_runs_in_float32_under_bf16_autocast():
    head = _head().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden, steps, _, _ = head.forward_steps(torch.randn(2, 12, 5, 3, 3).bfloat16())
    assert hidden.dtype == torch.float32
    assert torch.isfinite(steps.float()).all()


def test_gradients_reach_the_gru():
    head = _head()
    head(torch.randn(2, 12, 5, 3, 3)).sum().backward()
    for name, p in head.gru.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- the chosen design and the ones kept for comparison (ModelConfig.head.design) -----------------


def _by_hand(head: GRUHead, features: torch.Tensor, norm: bool) -> torch.Tensor:
    """The states ``(B, T, D)`` of an nn.GRU built here with ``head``'s weights, on the spatial mean
    of ``features`` (layer-normalised without affine terms when ``norm``: the LayerNorm starts at 1, 0)."""
    sequence = features.mean(dim=(3, 4)).transpose(1, 2)
    if norm:
        sequence = torch.nn.functional.layer_norm(sequence, sequence.shape[-1:])
    gru = torch.nn.GRU(12, head.gru.hidden_size, num_layers=head.gru.num_layers, batch_first=True,
                       bidirectional=head.gru.bidirectional)
    gru.load_state_dict(head.gru.state_dict())
    return gru(sequence)[0]


def test_the_first_head_classifies_the_last_state_of_a_gru_on_raw_features():
    head = _make(FIRST).eval()
    features = torch.randn(3, 12, 6, 4, 4)
    with torch.no_grad():
        expected = head.fc(_by_hand(head, features, norm=False)[:, -1])
        torch.testing.assert_close(head(features), expected)


def test_the_chosen_head_is_the_mean_over_steps_of_the_pooled_path_plus_the_gru_branch():
    head = _make().eval()
    with torch.no_grad():
        head.project.weight.normal_()
    features = torch.randn(3, 12, 6, 4, 4)
    with torch.no_grad():
        states = _by_hand(head, features, norm=True)
        z = features.mean(dim=(2, 3, 4))[:, None] + states @ head.project.weight.T + head.project.bias
        expected = (z @ head.fc.weight.T + head.fc.bias).mean(dim=1)
        torch.testing.assert_close(head(features), expected)


def test_the_registry_lists_the_chosen_head_first_and_each_other_design_changes_one_thing():
    assert list(HEADS)[0] == "gru" and HEADS["gru"] is GRUHead
    shared = {"__module__", "__qualname__", "__doc__", "__firstlineno__", "__static_attributes__", "__init__",
              "reset_parameters", "zero_score"}
    for name, cls in list(HEADS.items())[1:]:
        assert cls.__bases__ == (GRUHead,), name
        changed = set(vars(cls)) - shared
        assert len(changed - {"readout"}) == 1, (name, changed)


@pytest.mark.parametrize("readout", ["gru", "last_step", "attention_readout"])
@pytest.mark.parametrize("path", ["gru", "no_pooled_path"])
@pytest.mark.parametrize("direction", ["gru", "bidirectional"])
def test_every_design_combination_has_the_documented_shapes(readout, path, direction):
    head = _make(f"{readout}+{path}+{direction}+orthogonal").eval()
    features = torch.randn(3, 12, 6, 4, 4)
    states, steps, weights, logits = head.forward_steps(features)
    assert states.shape == (3, 6, 20 if direction == "bidirectional" else 10)
    assert steps.shape == (3, 6, 5) and weights.shape == (3, 6) and logits.shape == (3, 5)
    torch.testing.assert_close(weights.sum(1), torch.ones(3))
    # The clip's logits are the readout of the step logits, and forward returns them.
    torch.testing.assert_close(logits, (weights.unsqueeze(-1) * steps).sum(1))
    torch.testing.assert_close(head(features), logits)


def test_readout_weights_last_mean_and_attention_at_init():
    features = torch.randn(2, 12, 4, 3, 3)
    assert torch.equal(_make("last_step").forward_steps(features)[2], torch.tensor([[0.0, 0, 0, 1]] * 2))
    torch.testing.assert_close(_make().forward_steps(features)[2], torch.full((2, 4), 0.25))
    # The attention score starts at zero, so its softmax starts uniform.
    torch.testing.assert_close(_make("attention_readout").forward_steps(features)[2], torch.full((2, 4), 0.25))
    _, steps, _, logits = _make("last_step").forward_steps(features)
    assert torch.equal(logits, steps[:, -1])


def test_a_residual_head_starts_as_the_pooled_head():
    # The GRU branch's projection starts at zero, so the logits are fc(mean over T, H, W): tdrag_no_gru's head.
    head = _make("attention_readout+orthogonal").eval()
    assert torch.equal(head.project.weight, torch.zeros_like(head.project.weight))
    features = torch.randn(3, 12, 6, 4, 4)
    expected = features.mean(dim=(2, 3, 4)) @ head.fc.weight.T + head.fc.bias
    torch.testing.assert_close(head(features), expected)
    # Switched off, the branch is absent whatever the projection holds.
    with torch.no_grad():
        head.project.weight.normal_()
    assert not torch.allclose(head(features), expected)
    head.gru_enabled = False
    torch.testing.assert_close(head(features), expected)


def test_gradients_reach_the_gru_through_the_residual_branch_after_one_step():
    head = _make(branch_dropout=0.0)
    features, labels = torch.randn(4, 12, 5, 3, 3), torch.tensor([0, 1, 2, 3])
    optimiser = torch.optim.SGD(head.parameters(), lr=0.5)
    torch.nn.functional.cross_entropy(head(features), labels).backward()
    # At zero projection the GRU gets no gradient yet; the projection does.
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in head.gru.parameters())
    assert head.project.weight.grad.abs().sum() > 0
    optimiser.step()
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(head(features), labels).backward()
    assert all(p.grad.abs().sum() > 0 for p in head.gru.parameters())


def test_orthogonal_init_gives_orthogonal_recurrent_blocks_and_zero_biases():
    head = _make("orthogonal+bidirectional")
    for name, p in head.gru.named_parameters():
        for block in p.detach().chunk(3, dim=0):
            if name.startswith("weight_hh"):
                torch.testing.assert_close(block @ block.T, torch.eye(block.shape[0]), atol=1e-5, rtol=0)
            elif name.startswith("bias"):
                assert torch.equal(block, torch.zeros_like(block))
    # The chosen head keeps nn.GRU's uniform init: biases in (-1/sqrt(hidden), 1/sqrt(hidden)), not zero.
    assert _make().gru.bias_hh_l0.abs().sum() > 0


def test_layernorm_makes_the_head_blind_to_the_scale_of_its_input():
    head = _make("no_pooled_path").eval()
    features = torch.randn(2, 12, 5, 3, 3)
    torch.testing.assert_close(head(features), head(features * 50 + 3), atol=1e-4, rtol=1e-4)
    raw = _make("no_pooled_path+no_norm").eval()
    assert not torch.allclose(raw(features), raw(features * 50 + 3), atol=1e-2)


def test_weighted_pooling():
    features = torch.randn(2, 12, 3, 4, 4)
    # Uniform weights are the plain spatial mean; a one-hot weight picks that position.
    torch.testing.assert_close(spatial_pool(features, torch.full((2, 1, 3, 4, 4), 0.3)), spatial_pool(features))
    onehot = torch.zeros(2, 1, 3, 4, 4)
    onehot[..., 1, 2] = 1.0
    torch.testing.assert_close(spatial_pool(features, onehot), features[..., 1, 2].transpose(1, 2))


def test_branch_dropout_keeps_or_drops_each_clips_gru_branch_whole_in_training_only():
    head = _make(branch_dropout=0.5)
    with torch.no_grad():
        head.project.weight.normal_()
    features = torch.randn(64, 12, 4, 3, 3)
    with torch.no_grad():
        head.eval()
        full = head.forward_steps(features)[1]  # (B, T, K): the branch kept, unscaled
        head.gru_enabled = False
        pooled = head.forward_steps(features)[1]
        head.gru_enabled = True
        head.train()
        dropped = head.forward_steps(features)[1]
    # Linear classifier: kept clips read pooled + 2 (full - pooled), dropped ones pooled alone,
    # all of a clip's steps alike.
    kept = pooled + 2.0 * (full - pooled)
    is_kept = torch.isclose(dropped, kept, atol=1e-5).flatten(1).all(1)
    is_dropped = torch.isclose(dropped, pooled, atol=1e-5).flatten(1).all(1)
    assert bool((is_kept ^ is_dropped).all())
    assert 16 < int(is_kept.sum()) < 48  # p = 0.5 over 64 clips
    # p = 0: training and evaluation agree (no draw at all).
    head.branch_dropout = 0.0
    with torch.no_grad():
        torch.testing.assert_close(head.forward_steps(features)[1], full)


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_branch_dropout_must_be_a_probability_below_one(value):
    from tdrag.models.registry import build_model

    with pytest.raises(ValueError, match="model.head.branch_dropout"):
        build_model("tdrag", width=8, head={"branch_dropout": value})


def test_branch_dropout_does_nothing_to_a_head_without_the_pooled_path():
    head = _make("no_pooled_path", branch_dropout=0.5)
    features = torch.randn(8, 12, 4, 3, 3)
    with torch.no_grad():
        trained = head.train()(features)
        torch.testing.assert_close(head.eval()(features), trained)


@pytest.mark.parametrize("design", ["lstm", "gru+gru", "last_step+attention_readout"])
def test_bad_head_designs_are_named_by_build_model(design):
    from tdrag.models.registry import build_model

    with pytest.raises(ValueError, match="model.head.design"):
        build_model("tdrag", width=8, head={"design": design})
