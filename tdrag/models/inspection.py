"""What ``model.inspect(x)`` returns: the logits plus the internals the analysis side looks at; the
one way its stage maps are brought to frame size (:func:`upsample_attention`), and what its step
readouts mean for a given model (:func:`step_readout_meaning`).

One pass over many batches is one ModelInspection too: :meth:`ModelInspection.cat` joins the
batches' inspections along the batch (``tdrag.models.forward.forward_clips`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelInspection:
    """One forward pass, opened up.

    Fields (B clips, C classes):
        logits: (B, C), the same values ``model(x)`` returns.
        attention: stage name ("layer2", "layer3", ...) -> spatial attention map
            (B, 1, T', H', W') in [0, 1] (float32), at that stage's output resolution.
            Empty for models without attention.
        hidden_states: (B, T_gru, hidden), the last GRU layer's output after each time step;
            None without a GRU.
        step_logits: (B, T_gru, C), the classifier applied to each hidden state;
            ``step_logits[:, -1]`` equals ``logits``. None without a GRU. What a step readout
            means depends on the model (see ``tdrag.models.tdrag``): with ``causal_time`` step s
            depends only on the keyframes up to the last one it covers, i.e. it is what the
            model says having seen the clip up to there (a trained prediction when the run used
            ``train.step_loss`` "mean" or "linear"); without it every step has already seen the
            whole clip, so the steps show how the GRU's summary evolves, not the clip so far.
        readout_weights: (B, T_gru), the weights with which the head's readout averages the step
            logits into ``logits`` (one-hot on the last step, uniform, or learned attention over
            steps; ``logits = sum_s w_s step_logits_s``). None without a GRU.

    Tensors keep their graph (inspect does not switch off autograd), so attribution code can
    differentiate through them; call :meth:`cpu` for detached copies.
    """

    logits: torch.Tensor
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    hidden_states: torch.Tensor | None = None
    step_logits: torch.Tensor | None = None
    readout_weights: torch.Tensor | None = None

    def cpu(self) -> "ModelInspection":
        """Detached float32 copies on the CPU (for plotting, saving, numpy)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.detach().float().cpu()

        return ModelInspection(
            logits=move(self.logits),
            attention={name: move(m) for name, m in self.attention.items()},
            hidden_states=move(self.hidden_states),
            step_logits=move(self.step_logits),
            readout_weights=move(self.readout_weights),
        )

    @classmethod
    def cat(cls, parts: Sequence["ModelInspection"]) -> "ModelInspection":
        """The inspections of consecutive batches as one, concatenated along the batch (dim 0).

        Every part must hold the same outputs (the same attention stages; GRU outputs in all
        or none), as the batches of one model do.
        """
        if not parts:
            raise ValueError("ModelInspection.cat: nothing to concatenate")
        first = parts[0]
        stages = list(first.attention)
        if any(list(p.attention) != stages for p in parts):
            raise ValueError("ModelInspection.cat: the parts hold different attention stages")

        def join(name: str) -> torch.Tensor | None:
            values = [getattr(p, name) for p in parts]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise ValueError(f"ModelInspection.cat: {name} is missing from some parts")
            return torch.cat(values)

        return cls(
            logits=torch.cat([p.logits for p in parts]),
            attention={s: torch.cat([p.attention[s] for p in parts]) for s in stages},
            hidden_states=join("hidden_states"),
            step_logits=join("step_logits"),
            readout_weights=join("readout_weights"),
        )


def upsample_attention(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Trilinear upsampling of stage maps to frame size: ``(B, 1, T', H', W')`` or ``(B, T', H', W')``
    -> ``(B, T, H, W)`` float32, still within the maps' range (a convex combination).

    ``size`` is the target ``(T, H, W)``. Time is interpolated too, so a keyframe between two
    stage steps shows their blend (``align_corners=False``: each stage step covers an equal span).
    """
    if maps.dim() == 4:
        maps = maps.unsqueeze(1)
    if maps.dim() != 5 or maps.shape[1] != 1:
        raise ValueError(f"attention maps must be (B, 1, T', H', W'), got {tuple(maps.shape)}")
    size = tuple(int(s) for s in size)
    if len(size) != 3:
        raise ValueError(f"size must be (T, H, W), got {size}")
    return F.interpolate(maps.float(), size=size, mode="trilinear", align_corners=False)[:, 0]


def step_readout_meaning(model: nn.Module, step_loss: str = "last") -> str:
    """What the GRU step readouts (``inspect(x).step_logits``) of ``model`` mean, in two or three sentences.

    It says what each step has seen (causal time, direction), what its logits are made of (the GRU
    state alone, or the pooled path plus the GRU's contribution) and whether they were trained as
    predictions (per-step loss) or only through the readout of the clip's logits.

    Args:
        model: a tdrag model (any variant).
        step_loss: the run's ``train.step_loss`` ("last", "mean" or "linear").
    """
    head = getattr(model, "head", None)
    if not isinstance(getattr(head, "gru", None), nn.RNNBase):
        return "This model has no GRU: it gives one prediction per clip and no step readouts."
    span = model.step_frames
    if head.gru.bidirectional:
        seen = ("Bidirectional GRU: every step's state has read the whole sequence in both directions, so step s is "
                "not the clip so far.")
    elif model.time == "causal":
        seen = (f"Causal time: step s depends only on keyframes 0..{span}(s+1)-1, so its logits are what the model "
                "says having seen the clip up to there.")
    elif model.time == "local":
        seen = (f"Local time: layer4's step s covers keyframes {span}s..{span}(s+1)-1 alone, so the GRU's state at s "
                f"has read keyframes 0..{span}(s+1)-1 and nothing else has combined the steps.")
    else:
        seen = ("Not causal: every step of layer4 already sees the whole clip (centred temporal kernels), so step s is "
                "the GRU's state after s+1 summaries of the whole clip, not the clip so far.")
    pooled = ("the running mean of the pooled features up to that step" if head.causal else
              "the clip's pooled features (the same at every step)")
    made = (f"Each step's logits are the classifier on {pooled} plus the GRU state's contribution at that step."
            if head.residual else "Each step's logits are the classifier on the GRU state at that step.")
    if step_loss in ("mean", "linear"):
        trained = "They are trained predictions (the loss covered every step)."
    elif head.readout == "last":
        trained = "They are by-products: only the last step was trained to predict, earlier steps were never supervised."
    else:
        how = "average" if head.readout == "mean" else "attention-weighted average (readout_weights)"
        trained = (f"The clip's prediction is their {how}; a single step was trained only as part of it, not as a "
                   "prediction on its own.")
    return f"{seen} {made} {trained}"
