"""The attention designs kept for comparison: each a subclass of the chosen block
(:class:`tdrag.models.tdrag.ResidualAttention3d`, "residual") that changes one thing, registered by
name in :data:`tdrag.models.tdrag.ATTENTIONS` (``ModelConfig.attention.design``; several joined
with "+", e.g. ``"softmax+pooling"``). None did better than the chosen block
(benchmarks/RESULTS.md, "Design choices" and "What was tried").

* :class:`SoftmaxMask` ("softmax"): a spatial softmax per step divided by its peak: places compete.
* :class:`Gate` ("gate"): ``x * M``, no residual floor.
* :class:`Pooling` ("pooling"): layer4's map weights the head's spatial pooling instead of
  re-weighting layer4 (the block then sits after ``model.layer4`` as ``model.pool_attention``).
* :class:`LearnedTemperature` ("learned_temperature"): tau is learned per block.

``tdrag.models`` imports this module, so the names are registered whenever a model is built.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tdrag.config import AttentionConfig
from tdrag.models.tdrag import ATTENTIONS, ResidualAttention3d


class SoftmaxMask(ResidualAttention3d):
    """"softmax": a spatial softmax per time step divided by its peak, M = exp(l / tau - max_hw l / tau)
    in (0, 1] with the peak at 1: places compete, more on one means relatively less on every other."""

    def mask_function(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.exp(logits - logits.amax(dim=(-2, -1), keepdim=True))


class Gate(ResidualAttention3d):
    """"gate": ``x * M`` without the residual floor: what the mask leaves out is gone, so the map must
    find the evidence for the model to work."""

    def weigh(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return x * m.to(x.dtype)


class Pooling(ResidualAttention3d):
    """"pooling": layer4's map weights the head's spatial pooling (each step's vector is
    ``sum M x / sum M``) instead of re-weighting layer4, so it is exactly the evidence the classifier
    reads; the block sits after ``model.layer4`` as ``model.pool_attention`` and only its
    :meth:`mask` is used. The other stages' blocks are unchanged."""

    pools = True


class LearnedTemperature(ResidualAttention3d):
    """"learned_temperature": tau = exp(s) with ``s`` a learned scalar per block (``log_temperature``,
    starting at log ``cfg.temperature``): the block can sharpen or soften its own map."""

    def __init__(self, channels: int, cfg: AttentionConfig, time: str = "centred") -> None:
        super().__init__(channels, cfg, time)
        # log tau, so that tau stays positive.
        self.log_temperature = nn.Parameter(torch.tensor(math.log(self.temperature)))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if "log_temperature" in self._parameters:  # not yet while the base class builds
            with torch.no_grad():
                self.log_temperature.fill_(math.log(self.temperature))

    def scale(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.log_temperature.exp()


ATTENTIONS.update({
    "softmax": SoftmaxMask,
    "gate": Gate,
    "pooling": Pooling,
    "learned_temperature": LearnedTemperature,
})
