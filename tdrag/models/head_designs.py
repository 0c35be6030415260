"""The temporal head designs kept for comparison: each a subclass of the chosen head
(:class:`tdrag.models.tdrag.GRUHead`, "gru") that changes one thing, registered by name in
:data:`tdrag.models.tdrag.HEADS` (``ModelConfig.head.design``; several joined with "+").

Why the chosen head looks as it does: the first head, a GRU whose last state alone is classified,
on raw pooled features (``"no_norm+last_step+no_pooled_path"``), did not train at the benchmark
recipe (benchmarks/RESULTS.md, "Why the GRU head did not train"): ReLU features of growing size
saturated its gates, every clip's last state looked alike, and the trunk received half the
gradient a pooled head gives it. LayerNorm, the pooled path beside the GRU and the mean readout
answer each; branch dropout then made the GRU add to the pooled path rather than co-adapt with it.
The others were compared on the validation split of ``medium`` over 3 paired seeds and did not do
better (RESULTS.md, "Temporal head designs"):

* :class:`LastStep` ("last_step"): the clip's logits are the last step's.
* :class:`AttentionReadout` ("attention_readout"): learned softmax weights over steps.
* :class:`Orthogonal` ("orthogonal"): orthogonal recurrent init.
* :class:`Bidirectional` ("bidirectional"): the GRU runs both ways.
* :class:`NoNorm` ("no_norm"): the GRU reads the raw pooled features.
* :class:`NoPooledPath` ("no_pooled_path"): the classifier reads the GRU state alone.

``tdrag.models`` imports this module, so the names are registered whenever a model is built.
"""

from __future__ import annotations

import torch
from torch import nn

from tdrag.config import HeadConfig
from tdrag.models.tdrag import HEADS, GRUHead


class LastStep(GRUHead):
    """"last_step": the clip's logits are the last step's (the first head's readout)."""

    readout = "last"

    def readout_logits(self, step_logits: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.zeros(states.shape[:2], device=states.device, dtype=states.dtype)
        weights[:, -1] = 1.0
        return weights, step_logits[:, -1]  # exactly the last step's (no sum of zeros)


class AttentionReadout(GRUHead):
    """"attention_readout": a softmax over steps of a learned score of each state (``score``,
    starting at zero, so the weights start uniform)."""

    readout = "attention"

    def __init__(self, in_channels: int, num_classes: int, cfg: HeadConfig, causal: bool) -> None:
        super().__init__(in_channels, num_classes, cfg, causal)
        self.score = nn.Linear(self.state_size, 1)
        self.zero_score()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if "score" in self._modules:  # not yet while the base class builds
            self.zero_score()

    def zero_score(self) -> None:
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def readout_logits(self, step_logits: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = torch.softmax(self.score(states).squeeze(-1), dim=1)
        return weights, (weights.to(step_logits.dtype).unsqueeze(-1) * step_logits).sum(dim=1)


class Orthogonal(GRUHead):
    """"orthogonal": orthogonal recurrent blocks, Xavier input blocks and zero biases (the usual
    remedy for exploding or vanishing recurrences) instead of nn.GRU's uniform init."""

    def init_gru(self) -> None:
        for name, p in self.gru.named_parameters():
            for block in p.data.chunk(3, dim=0):  # the reset, update and candidate blocks
                if name.startswith("weight_hh"):
                    nn.init.orthogonal_(block)
                elif name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(block)
                else:
                    nn.init.zeros_(block)


class Bidirectional(GRUHead):
    """"bidirectional": a GRU running both ways (states ``(B, T, 2 hidden)``); each step then sees
    the whole sequence."""

    bidirectional = True


class NoNorm(GRUHead):
    """"no_norm": the GRU reads the raw pooled features (no LayerNorm)."""

    def make_norm(self, channels: int) -> nn.Module:
        return nn.Identity()


class NoPooledPath(GRUHead):
    """"no_pooled_path": no pooled path; the classifier reads the GRU state alone (``z_s = h_s``), and
    branch dropout has nothing to drop."""

    residual = False


HEADS.update({
    "last_step": LastStep,
    "attention_readout": AttentionReadout,
    "orthogonal": Orthogonal,
    "bidirectional": Bidirectional,
    "no_norm": NoNorm,
    "no_pooled_path": NoPooledPath,
})
