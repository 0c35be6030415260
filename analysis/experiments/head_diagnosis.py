"""Why a temporal head does or does not train: gradients, GRU gates and hidden states over epochs.

A run trains through ``tdrag.train.engine.train_one_epoch``; before the first epoch and after each
one, on one fixed probe batch of training clips (training mode for the gradients, centre crop, no
optimiser step), :func:`diagnose` measures

* **gradient norms per part** (:func:`parts_of`: the stem, each stage's trunk, the attention
  blocks, the GRU's input and recurrent weights, the classifier, the pooled path): the norm of the
  loss's gradient with respect to the part's parameters and its ratio to theirs (how fast one
  step moves the part);
* **the GRU's gates** (first layer, recomputed from its weights on the sequence it reads, checked
  against the module's own states): mean of the update gate z, the share of z and r saturated
  (< 0.05 or > 0.95), the share of the candidate n beyond |0.95|;
* **the sequence the GRU reads and the states it writes**: mean and std of its input, the spread
  of the states across clips, how far the last state moved from the first, the share of state
  entries beyond |0.95|.

    for row in diagnose(config, epochs=4, probe_size=32):
        print(format_row("tdrag", row))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from tdrag.config import Config


@dataclass
class EpochDiagnosis:
    """The probe's figures after one epoch (epoch 0: before training).

    Attributes:
        epoch: 0 before the first epoch, then 1, 2, ...
        gradients: part -> ``{"grad": norm, "param": norm, "ratio": grad / param}``.
        gru: :func:`gru_statistics`' figures, or None for a model without a GRU.
        train: the epoch's ``train_one_epoch`` figures (train_loss, train_acc, ...); empty for epoch 0.
    """

    epoch: int
    gradients: dict[str, dict[str, float]]
    gru: dict[str, float] | None
    train: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, **self.train, "gradients": self.gradients, "gru": self.gru}


def parts_of(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The model's parameters grouped by part (stem, layerK trunk, attention, GRU input / recurrent,
    head parts by module name); parts a model lacks are absent."""
    from tdrag.models.tdrag import ResidualAttention3d

    groups: dict[str, list[nn.Parameter]] = {}
    attention_ids = {id(p) for m in model.modules() if isinstance(m, ResidualAttention3d) for p in m.parameters()}
    for name, p in model.named_parameters():
        if id(p) in attention_ids:
            key = "attention"
        elif name.startswith("head.gru.") or name.startswith("head.temporal.gru."):
            key = "gru_input" if "weight_ih" in name or "bias_ih" in name else "gru_recurrent"
        elif name.startswith("head.") or name.startswith("fc."):
            key = "head_" + name.split(".")[-2] if name.count(".") >= 2 else "head"
        else:
            key = name.split(".")[0]
        groups.setdefault(key, []).append(p)
    return groups


def gradient_norms(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, train) -> dict[str, dict[str, float]]:
    """Gradient and parameter norms per part for one probe batch (train mode, no step).

    Args:
        x: ``(B, 3, T, H, W)`` normalised probe clips; labels: ``(B,)``.
        train: the run's ``TrainConfig`` (its loss).
    """
    from tdrag.train.losses import needs_inspection, training_loss

    model.train()
    model.zero_grad(set_to_none=True)
    out = model(x, return_inspection=True) if needs_inspection(train) else model(x)
    training_loss(out, labels, train).backward()
    result = {}
    for key, params in parts_of(model).items():
        grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
        g = float(torch.cat(grads).norm()) if grads else 0.0
        w = float(torch.cat([p.detach().flatten() for p in params]).norm())
        result[key] = {"grad": g, "param": w, "ratio": g / max(w, 1e-12)}
    model.zero_grad(set_to_none=True)
    return result


def capture_sequence(model: nn.Module) -> None:
    """Keep the ``(B, T, C)`` sequence the first GRU reads as ``model._probe_sequence`` (a forward
    pre-hook: the GRU's input is not part of ``model.inspect``)."""
    gru = getattr(getattr(model, "head", None), "gru", None)
    if gru is None:
        return

    def hook(module, args):
        model._probe_sequence = args[0].detach().float()

    gru.register_forward_pre_hook(hook)


def _gates(gru: nn.GRU, sequence: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The first layer's recurrence run by hand: z, r, n and states, each ``(B, T, hidden)``."""
    b, steps, _ = sequence.shape
    hidden = gru.hidden_size
    h = torch.zeros(b, hidden)
    zs, rs, ns, hs = [], [], [], []
    for t in range(steps):  # time steps: the recurrence itself, not a loop over clips
        gi = sequence[:, t] @ gru.weight_ih_l0.T + gru.bias_ih_l0
        gh = h @ gru.weight_hh_l0.T + gru.bias_hh_l0
        r = torch.sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = torch.sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = torch.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        zs.append(z), rs.append(r), ns.append(n), hs.append(h)
    return torch.stack(zs, 1), torch.stack(rs, 1), torch.stack(ns, 1), torch.stack(hs, 1)


@torch.no_grad()
def gru_statistics(model: nn.Module, x: torch.Tensor) -> dict[str, float] | None:
    """Gate saturation and state statistics of the first GRU layer on the probe batch ``x``
    ``(B, 3, T, H, W)`` (eval mode; needs :func:`capture_sequence`); None without a GRU."""
    gru = getattr(getattr(model, "head", None), "gru", None)
    if gru is None:
        return None
    model.eval()
    seen = model.inspect(x)
    sequence = getattr(model, "_probe_sequence", None)
    if sequence is None:
        return None
    z, r, n, states = _gates(gru, sequence)
    hidden = gru.hidden_size
    if gru.num_layers == 1 and not gru.bidirectional and seen.hidden_states is not None:
        # The hand-run recurrence must be the module's own, or the gates above are not the real ones.
        if not torch.allclose(states, seen.hidden_states.float()[..., :hidden], atol=1e-4):
            raise RuntimeError("gru_statistics: the recomputed GRU states differ from the model's")
    last_norm = max(1e-12, float(states[:, -1].norm(dim=1).mean()))
    return {
        "z_mean": float(z.mean()), "z_saturated": float(((z < 0.05) | (z > 0.95)).float().mean()),
        "r_saturated": float(((r < 0.05) | (r > 0.95)).float().mean()),
        "n_saturated": float((n.abs() > 0.95).float().mean()),
        "input_mean": float(sequence.mean()), "input_std": float(sequence.std()),
        "input_step_std_across_clips": float(sequence.std(dim=0).mean()),
        "state_abs_mean": float(states.abs().mean()),
        "state_std_across_clips": float(states[:, -1].std(dim=0).mean()),
        "state_saturated": float((states.abs() > 0.95).float().mean()),
        "last_minus_first": float((states[:, -1] - states[:, 0]).norm(dim=1).mean() / last_norm),
    }


def diagnose(config: Config, epochs: int, probe_size: int) -> Iterator[EpochDiagnosis]:
    """Train ``config``'s model for ``epochs`` epochs on the CPU (seeded: two variants see the same
    clips in the same order), yielding the probe's figures before the first epoch and after each."""
    from tdrag.data.augment import eval_transform
    from tdrag.data.loader import make_loader
    from tdrag.models.registry import build_model_from_config
    from tdrag.train.data import load_run_data
    from tdrag.train.engine import seed_everything, train_one_epoch
    from tdrag.train.schedule import build_optimizer, build_scheduler

    seed_everything(config.train.seed)
    data = load_run_data(config)
    model = build_model_from_config(config.model)
    capture_sequence(model)
    loader = make_loader(data.cache, data.train_rows, config.train.batch_size, shuffle=True, seed=config.train.seed)
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, len(loader), config.train)
    probe_rows = data.train_rows[np.linspace(0, len(data.train_rows) - 1, probe_size).astype(int)]
    x = eval_transform(torch.from_numpy(np.array(data.cache.frames[probe_rows])), crop=config.data.crop)
    labels = torch.as_tensor(data.cache.labels[probe_rows], dtype=torch.long)
    for epoch in range(0, epochs + 1):
        train = train_one_epoch(model, loader, optimizer, scheduler, config, torch.device("cpu"), epoch) if epoch else {}
        rng = torch.get_rng_state()  # the probe's dropout must not shift the training stream
        row = EpochDiagnosis(epoch, gradient_norms(model, x, labels, config.train), gru_statistics(model, x), train)
        torch.set_rng_state(rng)
        yield row


def format_row(variant: str, row: EpochDiagnosis) -> str:
    """One epoch's figures as a few lines of text (for the console)."""
    parts = " ".join(f"{k}={v['grad']:.2e}({v['ratio']:.1e})" for k, v in row.gradients.items())
    text = f"{variant} epoch {row.epoch}"
    if "train_loss" in row.train:
        text += f" loss {row.train['train_loss']:.3f} acc {row.train['train_acc']:.3f}"
    text += f"\n  grad(ratio): {parts}"
    if row.gru:
        text += "\n  gru: " + " ".join(f"{k}={v:.3f}" for k, v in row.gru.items())
    return text


def diagnosis_markdown(results: Sequence[tuple[str, list[EpochDiagnosis]]]) -> str:
    """One table: per variant and epoch, the loss, the gradient reaching the trunk and the head, the
    GRU's gate saturation and the spread of its inputs and last states across clips."""
    lines = ["| variant | epoch | train loss | train acc | grad stem | grad layer4 | grad GRU input weights | "
             "grad classifier | GRU input mean / std | z saturated | r saturated | n saturated | "
             "last state: std across clips |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for variant, rows in results:
        for row in rows:
            g, s = row.gradients, row.gru or {}
            cells = [f"{g[key]['grad']:.3f}" if key in g else "–" for key in ("stem", "layer4", "gru_input", "head_fc")]
            gru = (f"{s['input_mean']:.1f} / {s['input_std']:.1f} | {s['z_saturated']:.2f} | {s['r_saturated']:.2f} | "
                   f"{s['n_saturated']:.2f} | {s['state_std_across_clips']:.3f}") if s else "– | – | – | – | –"
            loss = f"{row.train['train_loss']:.3f} | {row.train['train_acc']:.3f}" if "train_loss" in row.train else "– | –"
            lines.append(f"| {variant} | {row.epoch} | {loss} | " + " | ".join(cells) + f" | {gru} |")
    return "\n".join(lines) + "\n"
