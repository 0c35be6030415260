"""load_pretrained: torchvision r3d_18 state dicts (written here, no download) and tdrag checkpoints."""

from __future__ import annotations

import pytest
import torch

from tdrag.models.pretrained import PretrainedError, load_pretrained
from tdrag.models.registry import build_model

torchvision = pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def r3d18_file(tmp_path_factory):
    from torchvision.models.video import r3d_18

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "r3d18.pt"
    torch.save(r3d_18(num_classes=400).state_dict(), path)
    return path


def test_r3d18_takes_every_trunk_tensor_and_keeps_its_classifier(r3d18_file):
    source = torch.load(r3d18_file, weights_only=True)
    model = build_model("r3d18", num_classes=11)
    fc_before = model.fc.weight.detach().clone()
    summary = load_pretrained(model, r3d18_file)
    state = model.state_dict()
    trunk = [k for k in state if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert sorted(summary.loaded) == sorted(trunk)
    assert summary.classifier == ["fc.weight", "fc.bias"] and not summary.mismatched
    assert sorted(summary.unused) == ["fc.bias", "fc.weight"]  # Kinetics' 400-way classifier
    for key in trunk:
        assert torch.equal(state[key], source[key]), key
    assert torch.equal(model.fc.weight, fc_before)
    assert "loaded" in summary.describe() and "\n" not in summary.describe()


def test_tdrag_backbone_loads_and_new_parts_keep_their_init(r3d18_file):
    source = torch.load(r3d18_file, weights_only=True)
    torch.manual_seed(0)
    model = build_model("tdrag", num_classes=7)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = load_pretrained(model, r3d18_file)
    state = model.state_dict()
    attention = [k for k in state if k.startswith("layer2.2.") and not k.endswith("num_batches_tracked")]
    assert attention and all(k in summary.new_parts for k in attention)
    for key in attention + [k for k in state if k.startswith("head.")]:
        assert torch.equal(state[key], before[key]), key
    assert torch.equal(state["layer3.0.conv1.0.weight"], source["layer3.0.conv1.0.weight"])
    assert "layer3.0.conv1.0.weight" in summary.loaded
    x = torch.randn(1, 3, 16, 32, 32)
    assert torch.isfinite(model(x)).all()


def test_shape_mismatches_are_reported_not_raised(r3d18_file):
    model = build_model("r3d18", num_classes=7, width=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    summary = load_pretrained(model, r3d18_file)
    assert not summary.loaded and summary.mismatched
    key, src, dst = summary.mismatched[0]
    assert src != dst and "skipped for their shape" in summary.describe()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_tdrag_checkpoint_and_wrapped_keys(tmp_path):
    from dataclasses import asdict

    from tdrag.config import Config
    from tdrag.runs.checkpoints import save_checkpoint

    torch.manual_seed(3)
    trained = build_model("tdrag", num_classes=7, width=8)
    path = save_checkpoint(tmp_path / "last.pt", {"config": asdict(Config()), "model": trained.state_dict()})
    model = build_model("tdrag", num_classes=11, width=8)
    summary = load_pretrained(model, path)
    state, source = model.state_dict(), trained.state_dict()
    for key in ("stem.0.weight", next(k for k in state if k.startswith("layer2.2.") and k.endswith("weight"))):
        assert torch.equal(state[key], source[key]), key
    assert any(k.startswith("layer2.2.") for k in summary.loaded)  # attention comes along from a TDRAG run
    assert all(k.startswith("head.") for k in summary.classifier)
    wrapped = {f"module.{k}": v for k, v in trained.state_dict().items()}
    torch.save({"state_dict": wrapped}, tmp_path / "ddp.pth")
    again = build_model("tdrag", num_classes=7, width=8)
    assert load_pretrained(again, tmp_path / "ddp.pth").loaded == summary.loaded


def test_bad_sources_name_the_file(tmp_path):
    model = build_model("r3d18", num_classes=7, width=8)
    with pytest.raises(PretrainedError, match="weights file not found"):
        load_pretrained(model, tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a pickle")
    with pytest.raises(PretrainedError, match=r"junk\.pt: cannot read"):
        load_pretrained(model, tmp_path / "junk.pt")
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(PretrainedError, match=r"other\.pt: none of its tensors"):
        load_pretrained(model, tmp_path / "other.pt")
    torch.save({"epoch": 3}, tmp_path / "nodict.pt")
    with pytest.raises(PretrainedError, match="holds no state dict"):
        load_pretrained(model, tmp_path / "nodict.pt")


def test_kinetics_without_network_says_how_to_pass_a_file(monkeypatch):
    from torchvision.models.video import R3D_18_Weights

    def offline(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(type(R3D_18_Weights.KINETICS400_V1), "get_state_dict", offline)
    with pytest.raises(PretrainedError, match=r"KINETICS400_V1 .*network unreachable.*model\.pretrained=r3d18_kinetics400\.pt"):
        load_pretrained(build_model("r3d18", num_classes=7, width=8), "kinetics400")
