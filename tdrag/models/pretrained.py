"""Initial trunk weights: torchvision r3d_18 weights (Kinetics-400) or a tdrag checkpoint.

``load_pretrained(model, spec)`` (``ModelConfig.pretrained``, called by ``tdrag.train.fit``) copies
the tensors of a source state dict into ``model`` where name and shape agree, and leaves the rest
at their initialisation:

- ``spec`` is ``"kinetics400"`` (torchvision's ``R3D_18_Weights.KINETICS400_V1``; torchvision is
  imported only then, and downloads the file once into its cache), or a path to a file holding a
  torchvision r3d_18 state dict (``torch.save(r3d_18(...).state_dict(), path)``), a dict with that
  under ``"state_dict"`` / ``"model"``, or a tdrag checkpoint (``runs/<name>/checkpoints/*.pt``).
  Files are read with ``torch.load(weights_only=True)``: no code in them runs.
- What loads: the trunk, ``stem.*`` and ``layer1.*`` ... ``layer4.*``. tdrag's module names are
  torchvision's (``tdrag.models.resnet3d``), so r3d_18's tensors map one to one onto ``r3d18``
  and onto the TDRAG variants' backbones (temporal strides and causal padding change no weight
  shape). TDRAG's attention blocks (``layer<k>.2.*``) are not in r3d_18, so they keep their init;
  from a tdrag checkpoint of a TDRAG model they load too.
- What never loads: the classifier (``fc.*`` of r3d18, ``head.*`` of TDRAG: GRU head or pool
  head): a new task has its own classes (Kinetics has 400).
- A tensor whose shape differs (another ``width``) is reported in the summary, not loaded, and
  does not stop the others. A source none of whose names the model has is an error: it is not
  an r3d_18 / tdrag state dict.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tdrag.errors import TdragError

KINETICS400 = "kinetics400"
TRUNK_PREFIXES = ("stem.", "layer1.", "layer2.", "layer3.", "layer4.")
CLASSIFIER_PREFIXES = ("fc.", "head.")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_COUNTER = "num_batches_tracked"

HOW_TO_SAVE = (
    "on a machine with internet: python -c \"import torch; from torchvision.models.video import r3d_18, "
    "R3D_18_Weights; torch.save(r3d_18(weights=R3D_18_Weights.KINETICS400_V1).state_dict(), 'r3d18_kinetics400.pt')\""
    ", copy the file here and set model.pretrained=r3d18_kinetics400.pt"
)


class PretrainedError(TdragError, ValueError):
    """Pretrained weights that cannot be read or do not fit the model (the message names the source)."""


@dataclass
class PretrainedSummary:
    """What ``load_pretrained`` did.

    Attributes:
        source: the spec (a path or ``"kinetics400"``).
        loaded: model keys that took the source's tensor (BatchNorm's ``num_batches_tracked``
            counters are neither loaded nor listed).
        not_loaded: model keys that kept their init (classifier, new parts, mismatched shapes,
            keys the source lacks).
        mismatched: ``(key, source shape, model shape)`` of tensors left out for their shape.
        classifier: model keys of the classifier (fc / head), never loaded.
        unused: source keys that went nowhere (its classifier, names the model does not have).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    classifier: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    @property
    def new_parts(self) -> list[str]:
        """Trunk keys of the model the source does not have (TDRAG's attention blocks from r3d_18)."""
        mismatched = {k for k, _, _ in self.mismatched}
        return [k for k in self.not_loaded if k not in mismatched and k not in self.classifier]

    def describe(self) -> str:
        """One line: how much loaded, what kept its init, what did not fit."""
        text = (f"{self.source}: loaded {len(self.loaded)} trunk tensors; kept init: classifier "
                f"{len(self.classifier)}, not in source {len(self.new_parts)}")
        if self.mismatched:
            key, src, dst = self.mismatched[0]
            text += (f"; {len(self.mismatched)} skipped for their shape (first {key}: "
                     f"{tuple(src)} in source, {tuple(dst)} in model)")
        if self.unused:
            text += f"; {len(self.unused)} source tensors unused"
        return text


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return {_strip_wrappers(k): v for k, v in obj.items()}
    return None


def _kinetics_state_dict() -> dict[str, torch.Tensor]:
    try:
        from torchvision.models.video import R3D_18_Weights
    except ImportError as exc:
        raise PretrainedError(f"model.pretrained: {KINETICS400!r} needs torchvision ({exc}); install it "
                              f"(pip install torchvision), or pass a file instead: {HOW_TO_SAVE}") from None
    try:
        state = R3D_18_Weights.KINETICS400_V1.get_state_dict(progress=False)
    except Exception as exc:  # noqa: BLE001 - URLError, OSError, HTTP or hash errors alike
        raise PretrainedError(f"model.pretrained: cannot fetch torchvision's R3D_18_Weights.KINETICS400_V1 "
                              f"({type(exc).__name__}: {exc}); {HOW_TO_SAVE}") from None
    return {_strip_wrappers(k): v for k, v in state.items()}


def read_state_dict(spec: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors named by ``spec`` (see the module docstring), keys without DDP/compile prefixes.

    Raises:
        PretrainedError: naming the file when it is missing, unreadable or holds no state dict.
    """
    if str(spec).strip().lower() == KINETICS400:
        return _kinetics_state_dict()
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PretrainedError(f"{path}: pretrained weights file not found (model.pretrained takes a file, "
                              f"'{KINETICS400}' or nothing)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a foreign pickle, garbage or a cut file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PretrainedError(f"{path}: cannot read as weights (torch.load with weights_only=True: {first})") from None
    if isinstance(obj, dict) and obj.get("format") == "tdrag-checkpoint":
        from tdrag.runs.checkpoints import load_checkpoint

        try:
            obj = load_checkpoint(path)["model"]
        except TdragError as exc:
            raise PretrainedError(str(exc)) from None
    state = _tensor_dict(obj)
    if state is None and isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state"):
            state = _tensor_dict(obj.get(key))
            if state is not None:
                break
    if state is None:
        raise PretrainedError(f"{path}: holds no state dict (expected a dict of tensors, such as a torchvision "
                              f"r3d_18 state_dict(), or a tdrag checkpoint)")
    return state


def load_pretrained(model: nn.Module, spec: str | os.PathLike) -> PretrainedSummary:
    """Copy matching trunk tensors of ``spec`` into ``model`` (in place); return what was done.

    Args:
        model: an ``r3d18`` or TDRAG model (a DDP or compiled wrapper is unwrapped).
        spec: ``"kinetics400"`` or a path (see the module docstring).

    Raises:
        PretrainedError: the source cannot be read, or none of its names is one of the model's.
    """
    from tdrag.runs.checkpoints import unwrap_model

    net = unwrap_model(model)
    source = read_state_dict(spec)
    target = net.state_dict()
    summary = PretrainedSummary(source=str(spec))
    update: dict[str, torch.Tensor] = {}
    for key, value in target.items():
        if key.endswith(_COUNTER):
            continue  # BatchNorm's step counter: bookkeeping, not a weight (the model keeps its own)
        if key.startswith(CLASSIFIER_PREFIXES):
            summary.classifier.append(key)
            summary.not_loaded.append(key)
            continue
        if not key.startswith(TRUNK_PREFIXES) or key not in source:
            summary.not_loaded.append(key)
            continue
        src = source[key]
        if tuple(src.shape) != tuple(value.shape):
            summary.mismatched.append((key, tuple(src.shape), tuple(value.shape)))
            summary.not_loaded.append(key)
            continue
        update[key] = src.to(dtype=value.dtype)
        summary.loaded.append(key)
    summary.unused = [k for k in source if k not in update and not k.endswith(_COUNTER)]
    if not update and not summary.mismatched:
        shown = ", ".join(list(source)[:3])
        raise PretrainedError(f"{spec}: none of its tensors is named like the model's trunk (stem.*, layer1.* ...; "
                              f"it has {shown}, ...): not a torchvision r3d_18 or tdrag state dict")
    target.update(update)
    net.load_state_dict(target, strict=True)
    return summary
