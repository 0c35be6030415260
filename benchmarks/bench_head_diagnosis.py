"""Why a temporal head does or does not train: gradients, GRU gates and hidden states over epochs.

    python benchmarks/bench_head_diagnosis.py --out runs/ablation --variants tdrag,tdrag_no_gru --epochs 4
    python benchmarks/bench_head_diagnosis.py --out runs/ablation --variants tdrag \\
        --extra model.head=gru_residual --name residual

On the `medium` set and recipe of ``benchmarks/bench_ablation.py`` (same data folder, same
caches), each variant trains for ``--epochs`` epochs through ``tdrag.engine.train_one_epoch``.
Before the first epoch and after each one, on one fixed probe batch of training clips (training
mode, centre crop, no optimiser step), the script measures:

* **gradient norms per part**: the stem, each stage's trunk, the attention blocks, the GRU's
  input and recurrent weights, the classifier, the pooled path (when the head has one); the norm
  of the gradient of the loss with respect to each part's parameters, and its ratio to the
  parameters' norm (how fast one step moves the part);
* **the GRU's gates** (first layer, recomputed from its weights on the probe sequence): mean of
  the update gate z and the share of entries saturated (z < 0.05 or z > 0.95; r likewise), the
  candidate n's share beyond |0.95|;
* **the sequence the GRU reads and the states it writes**: mean and std of the pooled layer4
  features per step, the spread of the states across clips (std over the batch, averaged over
  units), how much the last state differs from the first, and the share of state entries
  beyond |0.95|;
* the training loss and accuracy of each epoch.

It prints one table per variant and writes ``diagnosis.json`` (``--json``). Every run is seeded
(``--seed``), so two variants see the same clips in the same order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_ablation  # noqa: E402
from tdrag.config import apply_overrides, load_config  # noqa: E402


def parts_of(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The model's parameters grouped by part (stem, layerK trunk, attention, GRU input / recurrent,
    classifier, pooled path); parts a model lacks are absent."""
    from tdrag.models.attention import ResidualAttention3d

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
    """Gradient and parameter norms per part for one probe batch (train mode, no step)."""
    from tdrag.losses import needs_inspection, training_loss

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


@torch.no_grad()
def gru_statistics(model: nn.Module, x: torch.Tensor) -> dict[str, float] | None:
    """Gate saturation and state statistics of the first GRU layer on the probe batch (eval mode)."""
    head = getattr(model, "head", None)
    gru = getattr(head, "gru", None)
    if gru is None:
        return None
    model.eval()
    seen = model.inspect(x)
    sequence = getattr(model, "_probe_sequence", None)
    if sequence is None:
        return None
    b, steps, _ = sequence.shape
    w_ih, w_hh = gru.weight_ih_l0, gru.weight_hh_l0
    b_ih, b_hh = gru.bias_ih_l0, gru.bias_hh_l0
    hidden = gru.hidden_size
    h = torch.zeros(b, hidden)
    zs, rs, ns, hs = [], [], [], []
    for t in range(steps):
        gi = sequence[:, t] @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = torch.sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = torch.sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = torch.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        zs.append(z), rs.append(r), ns.append(n), hs.append(h)
    z, r, n, states = torch.stack(zs, 1), torch.stack(rs, 1), torch.stack(ns, 1), torch.stack(hs, 1)
    if gru.num_layers == 1 and not gru.bidirectional and seen.hidden_states is not None:
        # The hand-run recurrence is the module's own (a check that the gates above are the real ones).
        assert torch.allclose(states, seen.hidden_states.float()[..., :hidden], atol=1e-4)
    return {
        "z_mean": float(z.mean()), "z_saturated": float(((z < 0.05) | (z > 0.95)).float().mean()),
        "r_saturated": float(((r < 0.05) | (r > 0.95)).float().mean()),
        "n_saturated": float((n.abs() > 0.95).float().mean()),
        "input_mean": float(sequence.mean()), "input_std": float(sequence.std()),
        "input_step_std_across_clips": float(sequence.std(dim=0).mean()),
        "state_abs_mean": float(states.abs().mean()),
        "state_std_across_clips": float(states[:, -1].std(dim=0).mean()),
        "state_saturated": float((states.abs() > 0.95).float().mean()),
        "last_minus_first": float((states[:, -1] - states[:, 0]).norm(dim=1).mean() / max(1e-12, float(states[:, -1].norm(dim=1).mean()))),
    }


def capture_sequence(model: nn.Module) -> None:
    """Keep the (B, T, C) sequence the first GRU reads, via a forward pre-hook on it."""
    gru = getattr(getattr(model, "head", None), "gru", None)
    if gru is None:
        return

    def hook(module, args):
        model._probe_sequence = args[0].detach().float()

    gru.register_forward_pre_hook(hook)


def diagnose(variant: str, config, epochs: int, probe_size: int) -> dict:
    from tdrag.data.loader import eval_transform, make_loader
    from tdrag.engine import seed_everything, train_one_epoch
    from tdrag.models import build_model_from_config
    from tdrag.run_data import load_run_data
    from tdrag.schedule import build_optimizer, build_scheduler

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
    device = torch.device("cpu")
    rows = []
    for epoch in range(0, epochs + 1):
        row = {"epoch": epoch}
        if epoch:
            row.update(train_one_epoch(model, loader, optimizer, scheduler, config, device, epoch))
        rng = torch.get_rng_state()  # the probe's dropout must not shift the training stream
        row["gradients"] = gradient_norms(model, x, labels, config.train)
        row["gru"] = gru_statistics(model, x)
        torch.set_rng_state(rng)
        rows.append(row)
        print(format_row(variant, row), flush=True)
    return {"variant": variant, "epochs": rows}


def format_row(variant: str, row: dict) -> str:
    g = row["gradients"]
    parts = " ".join(f"{k}={v['grad']:.2e}({v['ratio']:.1e})" for k, v in g.items())
    text = f"{variant} epoch {row['epoch']}"
    if "train_loss" in row:
        text += f" loss {row['train_loss']:.3f} acc {row['train_acc']:.3f}"
    text += f"\n  grad(ratio): {parts}"
    if row.get("gru"):
        s = row["gru"]
        text += ("\n  gru: " + " ".join(f"{k}={v:.3f}" for k, v in s.items()))
    return text


def markdown(results: list[dict]) -> str:
    """One table: per variant and epoch, the loss, the gradient reaching the trunk and the head, the
    GRU's gate saturation and the spread of its inputs and last states across clips."""
    lines = ["| variant | epoch | train loss | train acc | grad stem | grad layer4 | grad GRU input weights | "
             "grad classifier | GRU input mean / std | z saturated | r saturated | n saturated | "
             "last state: std across clips |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        for row in result["epochs"]:
            g, s = row["gradients"], row.get("gru") or {}
            cell = lambda key: f"{g[key]['grad']:.3f}" if key in g else "–"  # noqa: E731
            gru = (f"{s['input_mean']:.1f} / {s['input_std']:.1f} | {s['z_saturated']:.2f} | {s['r_saturated']:.2f} | "
                   f"{s['n_saturated']:.2f} | {s['state_std_across_clips']:.3f}") if s else "– | – | – | – | –"
            loss = f"{row['train_loss']:.3f} | {row['train_acc']:.3f}" if "train_loss" in row else "– | –"
            lines.append(f"| {result['variant']} | {row['epoch']} | {loss} | {cell('stem')} | {cell('layer4')} | "
                         f"{cell('gru_input')} | {cell('head_fc')} | {gru} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/ablation", help="bench_ablation's folder (data and caches)")
    parser.add_argument("--variants", default="tdrag,tdrag_no_gru")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", type=int, default=32, help="clips in the probe batch")
    parser.add_argument("--extra", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--name", default="")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None, help="write the summary table here")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    base = load_config(bench_ablation.CONFIG)
    paths = bench_ablation.prepare_data(Path(args.out), base, None, 2)
    results = []
    for variant in args.variants.split(","):
        config = bench_ablation.run_config(base, variant, args.seed, paths, Path(args.out) / "diagnosis", args.extra,
                                           None)
        results.append(diagnose(variant + (f"_{args.name}" if args.name else ""), config, args.epochs, args.probe))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    text = markdown(results)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
