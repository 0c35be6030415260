"""tdrag.models.tdrag: every variant's forward, inspect, gradients, formats and precisions.

Tiny models (width 8) and clips (T = 16 or 8, 32x32) keep the file to seconds on 2 cores.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tdrag.config import ModelConfig
from tdrag.models.registry import MODEL_NAMES, build_model, build_model_from_config
from tdrag.models.tdrag import GRUHead, ResidualAttention3d

CL = torch.channels_last_3d
GRU_VARIANTS = ("tdrag", "tdrag_no_attention")
ATTENTION_VARIANTS = ("tdrag", "tdrag_no_gru")


def _model(name: str, seed: int = 0, head: dict | None = None, **options) -> nn.Module:
    torch.manual_seed(seed)
    options.setdefault("width", 8)
    return build_model(name, num_classes=7, head={"hidden": 16, **(head or {})}, **options)


def _clips(batch: int = 2, frames: int = 16, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shape_and_finite(name):
    model = _model(name)
    logits = model(_clips())
    assert isinstance(logits, torch.Tensor)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    assert model.variant == name


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_inspect_shapes_ranges_and_agreement_with_forward(name):
    model = _model(name).eval()
    x = _clips()
    with torch.no_grad():
        seen = model.inspect(x)
        logits = model(x)
    torch.testing.assert_close(seen.logits, logits)
    expected_stages = {"tdrag": {"layer2", "layer3", "layer4"}, "tdrag_no_gru": {"layer2", "layer3", "layer4"}}.get(name, set())
    assert set(seen.attention) == expected_stages
    # Default temporal strides (1, 2, 1, 1): 16 frames -> 8 steps from layer2 on; space 32 -> 8, 4, 2.
    sizes = {"layer2": 8, "layer3": 4, "layer4": 2}
    for stage, m in seen.attention.items():
        assert m.shape == (2, 1, 8, sizes[stage], sizes[stage]), stage
        assert torch.all((m > 0) & (m < 1)), stage
    if name in GRU_VARIANTS:
        assert seen.hidden_states.shape == (2, 8, 16)
        assert seen.step_logits.shape == (2, 8, 7)
        # The default readout averages the step logits into the clip's.
        torch.testing.assert_close(seen.step_logits.mean(1), seen.logits)
        torch.testing.assert_close(seen.readout_weights, torch.full((2, 8), 1 / 8))
    else:
        assert seen.hidden_states is None and seen.step_logits is None


@pytest.mark.parametrize("name, options", [("tdrag", {}), ("tdrag_no_gru", {}),
                                           ("tdrag", {"attention": {"design": "softmax+pooling"}})])
def test_the_head_on_the_head_inputs_is_the_forward(name, options):
    """A caller may run the head more than once on one pass of the trunk (the order tests do)."""
    model = _model(name, **options).eval()
    x = _clips(frames=8)
    with torch.no_grad():
        features, pool = model.head_inputs(x)
        assert (pool is not None) == (options != {})
        assert torch.equal(model.head(features, pool), model(x))


def test_tdrag_keeps_half_the_frames_for_the_gru_by_default():
    model = _model("tdrag").eval()
    with torch.no_grad():
        seen = model.inspect(_clips(batch=1, frames=16))
    assert seen.hidden_states.shape[1] >= 16 // 2
    # r3d_18's strides leave the GRU only 2 steps: the option is honoured.
    short = _model("tdrag", temporal_strides=(1, 2, 2, 2)).eval()
    with torch.no_grad():
        assert short.inspect(_clips(batch=1, frames=16)).hidden_states.shape[1] == 2


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_every_parameter(name):
    # Branch dropout off: with it, both clips of this batch may drop the GRU branch in this step.
    model = _model(name, head={"branch_dropout": 0.0})
    loss = nn.functional.cross_entropy(model(_clips(frames=4)), torch.tensor([0, 3]))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    if name in ATTENTION_VARIANTS:
        attention = [p for m in model.modules() if isinstance(m, ResidualAttention3d) for p in m.parameters()]
        assert attention and all(p.grad.abs().sum() > 0 for p in attention)
    if name in GRU_VARIANTS:
        # The GRU branch's projection starts at zero: it gets the gradient, the GRU gets it after a
        # step (tests/models/test_head_designs.py); the original head's GRU gets it at once.
        assert model.head.project.weight.grad.abs().sum() > 0
        plain = _model(name, head={"design": "no_norm+last_step+no_pooled_path"})
        nn.functional.cross_entropy(plain(_clips(frames=4)), torch.tensor([0, 3])).backward()
        assert all(p.grad.abs().sum() > 0 for p in plain.head.gru.parameters())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_training_step_lowers_the_loss_on_its_batch(name):
    model = _model(name, head={"dropout": 0.0})
    x, y = _clips(batch=4, frames=4, size=24), torch.tensor([0, 1, 2, 3])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    losses = []
    for _ in range(3):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]


def test_no_attention_variant_has_no_attention_parameters():
    full, ablated = _model("tdrag"), _model("tdrag_no_attention")
    assert not any(isinstance(m, ResidualAttention3d) for m in ablated.modules())
    attention = sum(p.numel() for m in full.modules() if isinstance(m, ResidualAttention3d) for p in m.parameters())
    assert attention > 0
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ablated) == count(full) - attention


def test_no_gru_variant_pools_and_has_no_gru():
    model = _model("tdrag_no_gru")
    assert not any(isinstance(m, (nn.GRU, GRUHead)) for m in model.modules())
    assert isinstance(model.head.fc, nn.Linear)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_stage_attributes_and_classifier_are_where_analysis_looks(name):
    model = _model(name)
    for stage in ("stem", "layer1", "layer2", "layer3", "layer4"):
        assert isinstance(getattr(model, stage), nn.Module)
    fc = model.fc if name == "r3d18" else model.head.fc
    assert fc.out_features == 7


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_same_input_same_output_in_eval_mode(name):
    x = _clips(frames=4)
    model = _model(name).eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        # And the same seed builds the same model.
        torch.testing.assert_close(_model(name).eval()(x), model(x))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bf16_autocast_forward_on_cpu(name):
    model = _model(name).eval()
    x = _clips(frames=4)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
            seen = model.inspect(x)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    assert all(m.dtype == torch.float32 for m in seen.attention.values())
    # bf16 keeps ~3 significant digits; the logits stay close to the fp32 ones.
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max() + 0.05


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_channels_last_3d_is_equivalent(name):
    model = _model(name).eval()
    x = _clips(frames=4)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=CL)
        out = model(x.to(memory_format=CL))
        features = model.features(x.to(memory_format=CL))
    assert features.is_contiguous(memory_format=CL)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_torch_compile_breaks_the_graph_only_at_the_gru():
    # dynamo's trace (no inductor, so fast): the backbone is one graph; the head (which holds the
    # cuDNN GRU) is the model's last call and is excluded, so at most one break, for that.
    explanation = torch._dynamo.explain(_model("tdrag").eval())(_clips(batch=1, frames=4))
    torch._dynamo.reset()
    assert explanation.graph_count == 1 + explanation.graph_break_count
    assert explanation.graph_break_count <= 1
    assert all("disable" in str(reason.reason) for reason in explanation.break_reasons)
    assert torch._dynamo.explain(_model("r3d18").eval())(_clips(batch=1, frames=4)).graph_break_count == 0
    torch._dynamo.reset()


@pytest.mark.slow
def test_torch_compile_runs_on_cpu_and_matches_eager():
    # The variant with the graph break; r3d18 is plain convolutions.
    model = _model("tdrag").eval()
    x = _clips(batch=1, frames=8)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-4)
    model.train()
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_cuda_bf16_channels_last_training_step(name):
    model = _model(name).cuda().to(memory_format=CL)
    x = _clips(batch=2, frames=16, size=64).cuda().to(memory_format=CL)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(model(x), torch.tensor([1, 2], device="cuda"))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        seen = model.inspect(x)
    torch.testing.assert_close(seen.logits.float(), model(x).float().to(seen.logits.device), rtol=2e-2, atol=2e-2)


# --- head and attention designs ----------------------------------------------------------------

HEAD = {"design": "attention_readout+orthogonal"}


def test_the_default_config_builds_the_documented_tdrag():
    # Every default is written once, in the config; this is what it builds (the module docstrings).
    model = build_model_from_config(ModelConfig(width=8))
    assert model.variant == "tdrag" and model.temporal_strides == (1, 2, 1, 1) and not model.causal_time
    assert model.attention_stages == (2, 3, 4) and model.pool_attention is None
    blocks = [m for m in model.modules() if isinstance(m, ResidualAttention3d)]
    assert [type(b) for b in blocks] == [ResidualAttention3d] * 3 and {b.temperature for b in blocks} == {1.0}
    head = model.head
    assert type(head) is GRUHead and isinstance(head.norm, nn.LayerNorm) and head.residual and head.readout == "mean"
    assert (head.gru.hidden_size, head.gru.num_layers, head.gru.bidirectional) == (256, 1, False)
    assert (head.dropout.p, head.branch_dropout) == (0.5, 0.5)


def test_a_residual_tdrag_starts_as_tdrag_no_gru():
    # Same seed, same trunk init; the GRU branch's projection starts at zero, so the logits agree.
    x = _clips()
    with_gru = _model("tdrag", head=HEAD).eval()
    without = _model("tdrag_no_gru").eval()
    trunk = {k: v for k, v in without.state_dict().items() if not k.startswith("head.")}
    with_gru.load_state_dict(trunk, strict=False)
    with torch.no_grad():
        with_gru.head.fc.load_state_dict(without.head.fc.state_dict())
        torch.testing.assert_close(with_gru(x), without(x))
        seen = with_gru.inspect(x)
    torch.testing.assert_close(seen.logits, (seen.readout_weights.unsqueeze(-1) * seen.step_logits).sum(1))


def test_attention_pooling_weights_the_heads_pooling_with_layer4s_map():
    model = _model("tdrag", attention={"design": "pooling"}, head=HEAD).eval()
    x = _clips()
    with torch.no_grad():
        seen = model.inspect(x)
        features = model.features(x)
        pooled = (features * seen.attention["layer4"]).sum((3, 4)) / seen.attention["layer4"].sum((3, 4))
        # layer4 stays a plain stage (its map's block comes after it) ...
        assert not any(isinstance(m, ResidualAttention3d) for m in model.layer4)
        assert isinstance(model.pool_attention, ResidualAttention3d)
        torch.testing.assert_close(features, model.layer4(model.layer3(model.layer2(model.layer1(model.stem(x))))))
        # ... and the head reads the map-weighted mean of each step.
        clip = pooled.transpose(1, 2).mean(1)
        expected = model.head.fc(clip + model.head.project(seen.hidden_states).mean(1))
    torch.testing.assert_close(seen.logits, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(x), seen.logits)
    with pytest.raises(ValueError, match="model.attention.design: pooling needs stage 4"):
        _model("tdrag", attention={"design": "pooling", "stages": (2, 3)})


def test_the_designs_named_in_the_config_are_the_ones_built():
    model = _model("tdrag", attention={"design": "softmax+learned_temperature"},
                   head={"design": "bidirectional+orthogonal", "branch_dropout": 0.25})
    head = model.head
    assert isinstance(head, GRUHead) and type(head).__name__ == "orthogonal+bidirectional"
    assert (head.residual, head.readout, head.gru.bidirectional, head.branch_dropout) == (True, "mean", True, 0.25)
    assert isinstance(head.norm, nn.LayerNorm)
    blocks = [m for m in model.modules() if isinstance(m, ResidualAttention3d)]
    assert len(blocks) == 3 and all(type(b).__name__ == "softmax+learned_temperature" for b in blocks)
    assert sum(name.endswith("log_temperature") for name, _ in model.named_parameters()) == 3


def test_step_readout_meaning_follows_the_head_and_the_loss():
    from tdrag.models.inspection import step_readout_meaning

    plain = step_readout_meaning(_model("tdrag", head={"design": "no_pooled_path+last_step"}), "last")
    assert "Not causal" in plain and "GRU state at that step" in plain and "only the last step was trained" in plain
    residual = step_readout_meaning(_model("tdrag"), "last")  # the default head
    assert "the clip's pooled features (the same at every step) plus the GRU state's contribution" in residual
    assert "their average" in residual
    attention = step_readout_meaning(_model("tdrag", head={"design": "attention_readout"}), "last")
    assert "attention-weighted average" in attention
    assert "trained predictions" in step_readout_meaning(_model("tdrag"), "mean")
    causal = step_readout_meaning(_model("tdrag", causal_time=True), "linear")
    assert causal.startswith("Causal time: step s depends only on keyframes 0..2(s+1)-1")
    assert "running mean of the pooled features up to that step" in causal
    assert "both directions" in step_readout_meaning(_model("tdrag", head={"design": "bidirectional"},
                                                            causal_time=True))
    assert "no GRU" in step_readout_meaning(_model("tdrag_no_gru"))
    assert "no GRU" in step_readout_meaning(build_model("r3d18", width=8))
    local = step_readout_meaning(_model("tdrag", local_time=True), "last")
    assert local.startswith("Local time: layer4's step s covers keyframes 2s..2(s+1)-1 alone")
    assert "the clip's pooled features (the same at every step)" in local


@pytest.mark.parametrize("design", ["residual", "pooling"])
def test_forward_hooks_on_a_stage_fire(design):
    # Grad-CAM reads model.layer4's output through a forward hook: forward must call the stage.
    model = _model("tdrag", attention={"design": design}, head=HEAD).eval()
    seen = []
    model.layer4.register_forward_hook(lambda module, args, out: seen.append(out.shape))
    model(_clips())
    assert len(seen) == 1
