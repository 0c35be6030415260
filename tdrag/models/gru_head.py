"""Temporal head: pool over space per time step -> LayerNorm -> GRU -> step logits -> readout.

The head reads layer4's features ``(B, C, T, H, W)`` as a sequence of T per-step vectors (the
spatial mean of each step, or a weighted mean when attention pools layer4, see
:mod:`tdrag.models.tdrag`) and turns them into logits. The first head (a GRU whose last state
alone is classified, on raw pooled features) did not train at the benchmark recipe
(benchmarks/RESULTS.md, "Why the GRU head did not train"): ReLU features of growing size
saturated its gates, every clip's last state looked alike, and the backbone received half the
gradient a pooled head gives it. The chosen design, :class:`GRUHead` (``"gru"``), answers each:

* **LayerNorm** on each step's vector (zero mean, unit variance over channels, learned gain and
  bias) before the GRU, so the gates see inputs of a fixed scale whatever the trunk does.
* **A pooled path beside the GRU** (VIBE's residual GRU, DFEW's ResNet-18 + GRU): each step's clip
  vector is ``z_s = mean_t f_t + P h_s``, the time-mean of the pooled features plus a projection
  ``P`` of the GRU's state, and the classifier reads ``z_s``. ``P`` starts at zero, so an untrained
  TDRAG *is* ``tdrag_no_gru`` (the same logits) and the GRU can only add to a head that already
  trains (under ``causal_time`` the pooled part of step s is the running mean up to s, so no step
  reads later keyframes); :attr:`~GRUHead.gru_enabled` = False switches the branch off
  (``z_s = mean_t f_t``) to measure what the GRU contributes (:func:`gru_branch_off`).
* **The mean readout**: the classifier runs on every step and the clip's logits are the mean of
  the step logits. The classifier is linear, so with any readout the clip's logits are
  ``sum_s w_s step_logits_s`` with the readout weights ``w`` ``(B, T)`` that
  :meth:`~GRUHead.forward_steps` returns.
* **Branch dropout** p (``HeadConfig.branch_dropout``): stochastic depth on the GRU branch. In
  training each clip keeps ``P h_s`` with probability 1 - p, scaled by 1 / (1 - p) so its expected
  value is unchanged, and otherwise reads the pooled path alone; evaluation always keeps it. The
  pooled path must then classify by itself, and the GRU learns what it adds to it rather than a
  share the two co-adapt to. Without it, a trained TDRAG leant on the GRU and still scored below
  ``tdrag_no_gru``; with it, the model scores higher and its GRU changes about 2 % of the
  predictions on ``medium`` (benchmarks/RESULTS.md).

The designs kept for comparison (:data:`HEADS`, "Temporal head designs" in RESULTS.md) are its
subclasses, each changing one thing: :class:`LastStep`, :class:`AttentionReadout`,
:class:`Orthogonal`, :class:`Bidirectional`, :class:`NoNorm`, :class:`NoPooledPath`.

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

from tdrag.config import HeadConfig

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
    """The chosen head ("gru"): per-step pooling -> LayerNorm -> GRU, a pooled path beside it,
    per-step logits -> their mean (see the module docstring).

    Args:
        in_channels: C of the backbone features.
        num_classes: classifier outputs.
        cfg: the model's head part (``hidden``, ``layers``, ``dropout`` before ``fc``, ``branch_dropout``).
        causal: the model's time is causal (``ModelConfig.causal_time``): the pooled path is the
            running mean up to each step instead of the mean over the whole clip.

    ``forward(features: (B, C, T, H, W), pool_weights=None) -> logits (B, num_classes)``;
    :meth:`forward_steps` also returns the states, the step logits and the readout weights.
    """

    #: A pooled path beside the GRU, its GRU branch projected into it (False: ``fc`` reads the state).
    residual = True
    bidirectional = False
    #: How the step logits become the clip's ("mean", "last", "attention"), for reports.
    readout = "mean"

    def __init__(self, in_channels: int, num_classes: int, cfg: HeadConfig, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.branch_dropout = cfg.branch_dropout
        self.state_size = cfg.hidden * (2 if self.bidirectional else 1)
        self.norm = self.make_norm(in_channels)
        self.gru = nn.GRU(in_channels, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                          bidirectional=self.bidirectional)
        # Residual: the GRU's state projected into the pooled features' space, starting at zero.
        self.project = nn.Linear(self.state_size, in_channels) if self.residual else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(in_channels if self.residual else self.state_size, num_classes)
        #: False switches the GRU branch of a residual head off (the pooled path alone).
        self.gru_enabled = True
        self.reset_parameters()

    def make_norm(self, channels: int) -> nn.Module:
        """The normalisation of each step's vector before the GRU."""
        return nn.LayerNorm(channels)

    def init_gru(self) -> None:
        """The GRU's init: nn.GRU's own (uniform)."""
        self.gru.reset_parameters()

    def reset_parameters(self) -> None:
        """The head's own init: :meth:`init_gru`, and the residual projection at zero.

        (``fc`` keeps whatever the model's generic init gives it, as in ``tdrag_no_gru``'s head.)
        """
        self.init_gru()
        if self.project is not None:
            nn.init.zeros_(self.project.weight)
            nn.init.zeros_(self.project.bias)

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

    def readout_logits(self, step_logits: torch.Tensor, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Readout weights ``(B, T)`` summing to 1 over steps and the clip's logits ``(B, K)`` from the
        step logits ``(B, T, K)`` and states ``(B, T, D)``: here the mean over steps."""
        b, t = states.shape[:2]
        return torch.full((b, t), 1.0 / t, device=states.device, dtype=states.dtype), step_logits.mean(dim=1)

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
        weights, logits = self.readout_logits(step_logits, states)
        return states, step_logits, weights, logits

    def forward(self, features: torch.Tensor, pool_weights: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_steps(features, pool_weights)[3]


# --- designs kept for comparison (benchmarks/RESULTS.md, "Temporal head designs") ------------------


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


#: The head designs by name (``ModelConfig.head.design``), the chosen one first; a name joined
#: with "+" combines the changes (:func:`tdrag.models.designs.design_class`).
HEADS: dict[str, type[GRUHead]] = {
    "gru": GRUHead,
    "last_step": LastStep,
    "attention_readout": AttentionReadout,
    "orthogonal": Orthogonal,
    "bidirectional": Bidirectional,
    "no_norm": NoNorm,
    "no_pooled_path": NoPooledPath,
}


@contextmanager
def gru_branch_off(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model``'s residual GRU head uses its pooled path alone (``z_s = mean_t f_t``).

    What the model scores like this is what it owes to everything but the GRU; the drop from its
    normal score is the GRU's share. Raises ValueError for a model whose head is not a residual
    GRU head (without the pooled path there is nothing left when the GRU is off).
    """
    head = getattr(model, "head", None)
    if not isinstance(head, GRUHead) or not head.residual:
        raise ValueError("gru_branch_off: the model has no GRU head with a pooled path (model.head.design), so its GRU "
                         "cannot be switched off")
    before = head.gru_enabled
    head.gru_enabled = False
    try:
        yield model
    finally:
        head.gru_enabled = before
