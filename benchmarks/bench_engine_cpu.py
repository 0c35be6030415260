"""The engine's overhead on the CPU: ``fit``'s training clips/s against a bare training loop.

    python benchmarks/bench_engine_cpu.py                      # demo-sized: width 16, T=8, 56 px, batch 16
    python benchmarks/bench_engine_cpu.py --epochs 4 --clips 280 --out benchmarks/last_engine.md

Both sides train the same model (same init), on the same cache rows, with the same batch size,
the same loader (``make_loader``, batched reads) and the same batch transform, in one process:

- **fit**: ``tdrag.train.fit.fit`` end to end; its clips/s is log.csv's ``clips_per_second`` (the
  training pass of each epoch, as the engine times it: bookkeeping, progress, device-side loss
  and accuracy sums and the non-finite checks included; evaluation and checkpoints are not).
- **bare**: ``for clips, labels, _ in loader: x = train_transform(...); loss = CE(model(x), y);
  loss.backward(); opt.step(); sched.step()``, nothing else.

The figure is the median over epochs after the first (warm-up) of fit's clips/s divided by the
bare loop's, measured alternately on the same machine; the goal is >= 0.9. Timings on a machine
whose cores are busy with other work are not comparable: the script prints the load average.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tdrag.config import load_config, replace  # noqa: E402


def bare_epoch(model, loader, optimizer, scheduler, config, generator) -> float:
    """Clips/s of one bare training pass."""
    from tdrag.data.augment import train_transform

    d = config.data
    model.train()
    seen = 0
    started = time.perf_counter()
    for clips, labels, _ in loader:
        x = train_transform(clips, crop=d.crop, scale=tuple(d.crop_scale), flip=d.flip, generator=generator)
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        seen += labels.shape[0]
    return seen / (time.perf_counter() - started)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=280, help="synthetic clips (easy preset)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per side (the first is warm-up)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--data", default=None, help="keep data and cache here (default: a temp folder)")
    parser.add_argument("--out", default=None, help="also write the Markdown here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from tdrag.data.cache import open_cache
    from tdrag.data.loader import make_loader
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root
    from tdrag.models.registry import build_model_from_config
    from tdrag.runs.epoch_log import read_log
    from tdrag.runs.layout import RunPaths
    from tdrag.train.engine import epoch_generator, seed_everything
    from tdrag.train.fit import fit
    from tdrag.train.schedule import build_optimizer, build_scheduler

    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench_engine_"))
    base = load_config(REPO / "configs" / "synthetic_demo.yaml")
    root = folder / "data"
    if not is_synthetic_root(root):
        generate_dataset(root, clips=args.clips, preset="easy", seed=0, size=base.synth.render_size, workers=2)
    cache_dir = prepare_cache(root, folder / "cache", frames=base.data.frames, size=base.data.size,
                              keyframes=base.data.keyframes, workers=2, progress=False)
    config = replace(base, data={"root": str(root), "cache": str(cache_dir), "val_fraction": 0.0, "num_workers": 0},
                     train={"epochs": args.epochs, "device": "cpu", "run_dir": str(folder / "run"), "eval_every": 1000})

    fit_rates, bare_rates = [], []
    result = fit(config, overwrite=True, progress=False)
    fit_rates = [row["clips_per_second"] for row in read_log(RunPaths(result.run_dir).log)]

    cache = open_cache(cache_dir)
    rows = cache.rows(config.data.fold, "train")
    seed_everything(config.train.seed)
    model = build_model_from_config(config.model)
    loader = make_loader(cache, rows, batch_size=config.train.batch_size, shuffle=True, seed=config.train.seed)
    optimizer = build_optimizer(model, config.train)
    scheduler = build_scheduler(optimizer, len(loader), config.train)
    for epoch in range(1, args.epochs + 1):
        bare_rates.append(bare_epoch(model, loader, optimizer, scheduler, config, epoch_generator(0, epoch, 0)))

    fit_median = statistics.median(fit_rates[1:] or fit_rates)
    bare_median = statistics.median(bare_rates[1:] or bare_rates)
    ratio = fit_median / bare_median
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    text = "\n".join([
        f"Device: CPU ({platform.machine()}, {torch.get_num_threads()} torch threads); torch {torch.__version__}; "
        f"{datetime.date.today().isoformat()}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        f"Setting: configs/synthetic_demo.yaml's model and data (width {config.model.width}, T={config.data.frames}, "
        f"{config.data.crop} px crops, batch {config.train.batch_size}), {len(rows)} training clips, {args.epochs} epochs "
        "per side, the first one warm-up",
        f"Command: python benchmarks/bench_engine_cpu.py {' '.join(argv if argv is not None else sys.argv[1:])}",
        "",
        "| side | clips/s per epoch | median (after warm-up) |",
        "|---|---|---:|",
        f"| fit | {', '.join(f'{r:.1f}' for r in fit_rates)} | {fit_median:.1f} |",
        f"| bare loop | {', '.join(f'{r:.1f}' for r in bare_rates)} | {bare_median:.1f} |",
        "",
        f"Engine overhead ratio (fit / bare): {ratio:.3f} (goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'})",
    ]) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
