"""Temporal head: pool over space per time step -> [LayerNorm] -> GRU -> step logits -> readout.

The head reads layer4's features ``(B, C, T, H, W)`` as a sequence of T per-step vectors (the
spatial mean of each step, or a weighted mean when attention pools layer4, see
:mod:`tdrag.models.tdrag`) and turns them into logits. Its design is a set of ``ModelConfig``
options, because the plain version (a GRU whose last state alone is classified, on raw pooled
features) did not train at the benchmark recipe (benchmarks/RESULTS.md, "Why the GRU head did not
train"): ReLU features of growing size saturated its gates, every clip's last state looked alike,
and the backbone received half the gradient a pooled head gives it.

* ``input_norm``: ``"layernorm"`` normalises each step's vector (zero mean, unit variance over
  channels, learned gain and bias) before the GRU, so the gates see inputs of a fixed scale
  whatever the trunk's activations do; ``"none"`` feeds the raw pooled features.
* ``residual``: when True, a pooled path sits beside the GRU (VIBE's residual GRU, DFEW's
  ResNet-18 + GRU): each step's clip vector is ``z_s = mean_t f_t + P h_s``, the time-mean of the
  pooled features plus a projection ``P`` of the GRU's state, and the classifier reads ``z_s``.
  ``P`` starts at zero, so an untrained TDRAG *is* ``tdrag_no_gru`` (the same logits) and the GRU
  can only add to a head that already trains (under ``causal_time`` the pooled part of step s is
  the running mean up to s, so no step reads later keyframes); :attr:`gru_enabled` = False switches the branch off
  (``z_s = mean_t f_t``) to measure what the GRU contributes. When False the classifier reads
  ``h_s`` alone (the original head).
* ``readout``: how step logits become the clip's logits: ``"last"`` (the last step's),
  ``"mean"`` (the average over steps) or ``"attention"`` (a softmax over steps of a learned score
  of each state, starting uniform). The classifier is linear, so in every case the clip's logits
  are ``sum_s w_s step_logits_s`` with the readout weights ``w`` ``(B, T)`` that
  :meth:`forward_steps` returns.
* ``init``: ``"orthogonal"`` (orthogonal recurrent blocks, Xavier input blocks, zero biases: the
  usual remedy for exploding or vanishing recurrences) or ``"pytorch"`` (nn.GRU's uniform init).
* ``bidirectional``: a GRU running both ways (states ``(B, T, 2 hidden)``); each step then sees
  the whole sequence.
* ``branch_dropout`` p (residual heads only): stochastic depth on the GRU branch. In training each
  clip keeps ``P h_s`` with probability 1 - p, scaled by 1 / (1 - p) so its expected value is
  unchanged, and otherwise reads the pooled path alone; evaluation always keeps it. The pooled
  path must then classify by itself, and the GRU learns what it adds to it rather than a share
  the two co-adapt to. Without it, a trained TDRAG leant on the GRU and still scored below
  ``tdrag_no_gru``; with it (the default, chosen on the validation split of ``medium``), the
  model scores higher and its GRU changes about 2 % of the predictions there (benchmarks/RESULTS.md).

Fast path: the per-step features are one spatial mean and a transpose (no Python loop over time);
the GRU gets a contiguous batch-first (B, T, C) input so cuDNN runs the whole sequence in one call.
The GRU runs in float32 even under bf16 autocast (a recurrence accumulates rounding error, and
the GRU is a tiny share of the model's FLOPs), and outside torch.compile: dynamo does not trace
RNN modules, so the whole head (pool, GRU, fc: well under 1% of the FLOPs) is marked as the one
intended graph break.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

#: Choices of the head options (``ModelConfig.gru_input_norm``, ``gru_readout``, ``gru_init``).
INPUT_NORMS: tuple[str, ...] = ("none", "layernorm")
READOUTS: tuple[str, ...] = ("last", "mean", "attention")
GRU_INITS: tuple[str, ...] = ("pytorch", "orthogonal")


def spatial_pool(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-step vectors ``(B, T, C)`` of ``features: (B, C, T, H, W)``: the spatial mean, or with
    ``weights: (B, 1, T, H, W)`` (non-negative) the weighted mean ``sum w x / sum w`` per step."""
    if weights is None:
        # (B, C, T) -> (B, T, C); already contiguous when the features are channels_last_3d.
        return features.mean(dim=(3, 4)).transpose(1, 2)
    w = weights.to(features.dtype)
    total = w.sum(dim=(3, 4)).clamp_min(torch.finfo(w.dtype).tiny)  # (B, 1, T)
    return ((features * w).sum(dim=(3, 4)) / total).transpose(1, 2)


class GRUHead(nn.Module):
    """Per-step pooling -> [LayerNorm] -> GRU -> per-step logits -> readout (see the module docstring).

    Args:
        in_channels: C of the backbone features.
        num_classes: classifier outputs.
        hidden: GRU hidden size (per direction).
        layers: stacked GRU layers.
        dropout: dropout probability before ``fc``.
        input_norm: "none" or "layernorm".
        readout: "last", "mean" or "attention".
        residual: a pooled path beside a zero-initialised GRU branch.
        init: "pytorch" or "orthogonal".
        bidirectional: a bidirectional GRU.
        causal: the model's time is causal (``ModelConfig.causal_time``): the pooled path is the
            running mean up to each step instead of the mean over the whole clip.
        branch_dropout: probability of dropping the GRU branch per clip in training (residual heads;
            without the pooled path it does nothing).

    ``forward(features: (B, C, T, H, W), pool_weights=None) -> logits (B, num_classes)``;
    :meth:`forward_steps` also returns the states, the step logits and the readout weights.
    The options are checked by ``tdrag.config`` (``model.gru_*``; ``build_model`` goes through it).
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 256, layers: int = 1, dropout: float = 0.5,
                 input_norm: str = "layernorm", readout: str = "mean", residual: bool = True, init: str = "pytorch",
                 bidirectional: bool = False, causal: bool = False, branch_dropout: float = 0.5) -> None:
        super().__init__()
        self.input_norm, self.readout, self.residual, self.init = input_norm, readout, residual, init
        self.causal = causal
        self.branch_dropout = branch_dropout
        states = hidden * (2 if bidirectional else 1)
        self.norm = nn.LayerNorm(in_channels) if input_norm == "layernorm" else nn.Identity()
        self.gru = nn.GRU(in_channels, hidden, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        # The readout's score of each state; starts at zero, so the weights start uniform.
        self.score = nn.Linear(states, 1) if readout == "attention" else None
        # Residual: the GRU's state projected into the pooled features' space, starting at zero.
        self.project = nn.Linear(states, in_channels) if residual else None
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels if residual else states, num_classes)
        #: False switches the GRU branch of a residual head off (the pooled path alone).
        self.gru_enabled = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The head's own init: GRU per ``init``; the readout score and the residual projection at zero.

        (``fc`` keeps whatever the model's generic init gives it, as in ``tdrag_no_gru``'s head.)
        """
        if self.init == "orthogonal":
            for name, p in self.gru.named_parameters():
                blocks = p.data.chunk(3, dim=0)  # the reset, update and candidate blocks
                for block in blocks:
                    if name.startswith("weight_hh"):
                        nn.init.orthogonal_(block)
                    elif name.startswith("weight_ih"):
                        nn.init.xavier_uniform_(block)
                    else:
                        nn.init.zeros_(block)
        else:
            self.gru.reset_parameters()
        for layer in (self.score, self.project):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def run_gru(self, sequence: torch.Tensor) -> torch.Tensor:
        """``sequence: (B, T, C)`` -> last layer's outputs ``(B, T, hidden * directions)``, float32."""
        with torch.autocast(device_type=sequence.device.type, enabled=False):
            out, _ = self.gru(sequence.float().contiguous())
        return out

    def pooled_path(self, sequence: torch.Tensor) -> torch.Tensor:
        """The residual head's pooled vector from the per-step vectors ``(B, T, C)``: their mean over
        time ``(B, 1, C)``, or for a causal model the running mean up to each step ``(B, T, C)`` (so
        step s's logits still depend on the keyframes up to s alone)."""
        if not self.causal:
            return sequence.mean(dim=1, keepdim=True)
        steps = torch.arange(1, sequence.shape[1] + 1, device=sequence.device, dtype=sequence.dtype)
        return sequence.cumsum(dim=1) / steps[None, :, None]

    def branch(self, projected: torch.Tensor) -> torch.Tensor:
        """The GRU branch ``P h`` ``(B, T, C)`` after branch dropout: in training each clip's branch is
        kept (times 1 / (1 - p)) or zeroed, one draw per clip for all its steps; unchanged in eval."""
        p = self.branch_dropout
        if not self.training or p == 0.0:
            return projected
        keep = torch.rand(projected.shape[0], 1, 1, device=projected.device) >= p
        return projected * (keep.to(projected.dtype) / (1.0 - p))

    def readout_weights(self, states: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` weights summing to 1 over steps, from the states ``(B, T, D)``."""
        b, t = states.shape[:2]
        if self.readout == "last":
            w = torch.zeros(b, t, device=states.device, dtype=states.dtype)
            w[:, -1] = 1.0
            return w
        if self.readout == "mean":
            return torch.full((b, t), 1.0 / t, device=states.device, dtype=states.dtype)
        return torch.softmax(self.score(states).squeeze(-1), dim=1)

    # Disabling the whole method, not just the GRU call, keeps the break at one place: a break
    # inside nested calls makes dynamo split each enclosing frame too (4 graphs instead of 2).
    @torch.compiler.disable
    def forward_steps(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``features: (B, C, T, H, W)`` -> states ``(B, T, D)``, step logits ``(B, T, K)``, readout
        weights ``(B, T)`` and the clip's logits ``(B, K) = sum_s w_s step_logits_s``.

        ``pool_weights: (B, 1, T, H, W)`` weights the spatial pooling (attention pooling).
        """
        sequence = spatial_pool(features, pool_weights).float()  # (B, T, C)
        states = self.run_gru(self.norm(sequence))
        if self.residual:
            clip = self.pooled_path(sequence)  # (B, 1 or T, C)
            z = clip + self.branch(self.project(states)) if self.gru_enabled else clip.expand_as(sequence)
        else:
            z = states
        # The classifier runs on every step (a (B*T, D) matmul, negligible); the clip's logits are
        # the readout of the step logits, so inspect's step logits and forward's logits agree.
        step_logits = self.fc(self.dropout(z))
        weights = self.readout_weights(states)
        if self.readout == "last":
            logits = step_logits[:, -1]  # exactly the last step's (no sum of zeros)
        elif self.readout == "mean":
            logits = step_logits.mean(dim=1)
        else:
            logits = (weights.to(step_logits.dtype).unsqueeze(-1) * step_logits).sum(dim=1)
        return states, step_logits, weights, logits

    def forward(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_steps(features, pool_weights)[3]


@contextmanager
def gru_branch_off(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s residual GRU head uses its pooled path alone (``z_s = mean_t f_t``).

    What the model scores like this is what it owes to everything but the GRU; the drop from its
    normal score is the GRU's share. Raises ValueError for a model whose head is not a residual
    GRU head (without the pooled path there is nothing left when the GRU is off).
    """
    head = getattr(model, "head", None)
    if not isinstance(head, GRUHead) or not head.residual:
        raise ValueError("gru_branch_off: the model has no residual GRU head (model.gru_residual), so its GRU "
                         "cannot be switched off")
    before = head.gru_enabled
    head.gru_enabled = False
    try:
        yield model
    finally:
        head.gru_enabled = before
