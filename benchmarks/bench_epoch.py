"""One training epoch through the frame-cache loader vs the model alone: is the loader the bottleneck?

Goal (issue 4): on a GPU, one epoch over a synthetic set at T = 16, 112x112 through the cache
loader runs at >= 0.9x the model-only clips/s of benchmarks/bench_model.py in the same mode.

Both sides run in this process on the same model, optimiser and batch size:

- **loader**: ``tdrag.train.engine.train_one_epoch`` over ``make_loader`` on the cache (memmap reads in
  DataLoader workers, pinned non-blocking copies, random resized crop + flip + normalisation on
  the device, forward, loss, backward, SGD step, the per-step finite-loss check), as ``fit`` runs it.
- **model only**: the same steps on one fixed, already-augmented batch on the device (what
  bench_model.py times), for as many steps as the epoch has.

One untimed warm-up epoch comes first (cuDNN autotuning, torch.compile, worker start-up).

Examples:
    python benchmarks/bench_epoch.py                                   # GPU: 16 x 112, B 32, bf16 + channels_last
    python benchmarks/bench_epoch.py --compile
    python benchmarks/bench_epoch.py --device cpu --clips 21 --frames 8 --size 40 --crop 32 \\
        --width 8 --batch 4 --workers 0 --amp false                   # CPU smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tdrag.atomic import write_text
from tdrag.config import Config, replace


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def build_cache(folder: Path, clips: int, frames: int, size: int, render: int, workers: int) -> Path:
    """Synthesise ``clips`` easy clips and prepare a uniform-keyframe cache (reused when present)."""
    from tdrag.data.prepare import prepare_cache
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root

    data = folder / "data"
    if not is_synthetic_root(data):
        generate_dataset(data, clips=clips, preset="easy", seed=0, size=render, workers=workers, progress=True)
    return prepare_cache(data, folder / f"cache_T{frames}_S{size}", frames=frames, size=size, keyframes="uniform",
                         workers=workers, overwrite=True, progress=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(model, optimizer, x: torch.Tensor, y: torch.Tensor, steps: int, config: Config,
               device: torch.device) -> float:
    """Seconds for ``steps`` training steps on one fixed batch (same step as the engine's)."""
    from tdrag.runtime import autocast

    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        with autocast(device, config.train.amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--model", default="tdrag")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--clips", type=int, default=640, help="synthetic clips in the cache (all are trained on)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="cached frame side")
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--render", type=int, default=128, help="side of the rendered synthetic frames")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers (and synth/prepare processes)")
    parser.add_argument("--amp", type=_bool, default=True, help="bf16 autocast on CUDA")
    parser.add_argument("--channels-last", type=_bool, default=True)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--data", default=None, help="keep the synthetic set and cache here (default: a temp folder)")
    parser.add_argument("--test-clips", type=int, default=0,
                        help="also time evaluation over this many clips and project the 5-fold x 100-epoch "
                             "protocol (DFEW: --clips 9356 --test-clips 3000)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON")
    parser.add_argument("--out", default=None, help="also write the Markdown line to this file")
    args = parser.parse_args(argv)

    from tdrag.data.augment import train_transform
    from tdrag.data.loader import make_loader
    from tdrag.models.registry import build_model_from_config
    from tdrag.runtime import resolve_device, to_memory_format
    from tdrag.train.engine import evaluate, seed_everything, train_one_epoch
    from tdrag.train.schedule import build_optimizer, build_scheduler

    device = resolve_device(args.device)
    folder = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="bench_epoch_"))
    cache_dir = build_cache(folder, args.clips, args.frames, args.size, args.render, max(1, args.workers))
    from tdrag.data.cache import open_cache

    cache = open_cache(cache_dir)
    config = replace(
        Config(),
        data={"cache": str(cache_dir), "frames": args.frames, "size": args.size, "crop": args.crop,
              "keyframes": "uniform", "num_workers": args.workers},
        model={"name": args.model, "width": args.width},
        train={"batch_size": args.batch, "epochs": 3, "amp": args.amp, "channels_last": args.channels_last,
               "compile": args.compile, "device": str(device), "optimizer": "sgd", "lr": 0.001},
    )
    seed_everything(0)
    net = build_model_from_config(config.model).to(device)
    if args.channels_last and device.type == "cuda":
        net = net.to(memory_format=torch.channels_last_3d)
    model = torch.compile(net) if args.compile else net
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = np.arange(len(cache))
    loader = make_loader(cache, rows, batch_size=args.batch, shuffle=True, num_workers=args.workers, seed=0,
                         drop_last=True)
    optimizer = build_optimizer(net, config.train)
    scheduler = build_scheduler(optimizer, len(loader), config.train)

    train_one_epoch(model, loader, optimizer, scheduler, config, device, epoch=1)  # warm-up
    stats = train_one_epoch(model, loader, optimizer, scheduler, config, device, epoch=2)
    loader_clips_s = stats["clips"] / stats["seconds"]

    clips, labels, _ = next(iter(loader))
    x = train_transform(clips.to(device), crop=args.crop, scale=tuple(config.data.crop_scale))
    x = to_memory_format(x, args.channels_last)
    y = labels.to(device)
    model_only(model, optimizer, x, y, 3, config, device)  # warm-up for this fixed shape
    steps = len(loader)
    seconds = model_only(model, optimizer, x, y, steps, config, device)
    model_clips_s = steps * args.batch / seconds
    ratio = loader_clips_s / model_clips_s
    eval_clips_s = projected_hours = None
    if args.test_clips:
        eval_rows = np.arange(min(args.test_clips, len(cache)))
        eval_loader = make_loader(cache, eval_rows, batch_size=args.batch, shuffle=False, num_workers=args.workers)
        evaluate(model, eval_loader, device, crop=args.crop, amp=args.amp, channels_last=args.channels_last)  # warm-up
        _sync(device)
        started = time.perf_counter()
        evaluate(model, eval_loader, device, crop=args.crop, amp=args.amp, channels_last=args.channels_last)
        _sync(device)
        eval_clips_s = len(eval_rows) / (time.perf_counter() - started)
        epoch_s = len(cache) / loader_clips_s + args.test_clips / eval_clips_s
        projected_hours = 5 * 100 * epoch_s / 3600

    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()})"
    mode = ("bf16" if args.amp and device.type == "cuda" else "fp32") + ("_cl" if args.channels_last and device.type == "cuda" else "") + ("_compile" if args.compile else "")
    result = {
        "date": datetime.date.today().isoformat(), "card": card, "torch": torch.__version__, "mode": mode,
        "model": args.model, "width": args.width, "clips": len(cache),
        "frames": args.frames, "crop": args.crop, "batch": args.batch, "workers": args.workers,
        "loader_clips_per_s": round(loader_clips_s, 2), "model_only_clips_per_s": round(model_clips_s, 2),
        "ratio": round(ratio, 3), "goal_met": ratio >= 0.9,
        "eval_clips_per_s": None if eval_clips_s is None else round(eval_clips_s, 2),
        "projected_5x100_hours": None if projected_hours is None else round(projected_hours, 2),
        "command": "python benchmarks/bench_epoch.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    line = (f"| {result['date']} | {card} | {args.model} w{args.width} | {mode} | T={args.frames} {args.crop}x{args.crop} "
            f"B={args.batch} | {args.workers} | {loader_clips_s:.1f} | {model_clips_s:.1f} | {ratio:.2f} |")
    print("| date | card | model | mode | input | workers | epoch via cache loader (clips/s) | model only (clips/s) | ratio |")
    print("|---|---|---|---|---|---:|---:|---:|---:|")
    print(line)
    print(f"goal ratio >= 0.9: {'met' if result['goal_met'] else 'NOT met'}")
    if projected_hours is not None:
        print(f"evaluation: {eval_clips_s:.1f} clips/s; projected 5-fold x 100-epoch protocol "
              f"({len(cache)} training + {args.test_clips} test clips per epoch): {projected_hours:.2f} h")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")
    if args.out:
        write_text(args.out, line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
