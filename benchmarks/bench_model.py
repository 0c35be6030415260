"""Training and inference speed of r3d18 and TDRAG: clips/s, achieved TFLOP/s, peak memory.

Default setting (the one RESULTS.md reports): CUDA, B = 64, T = 16, 112x112, full width, in
four modes:

    fp32             float32 weights and activations, TF32 allowed for convs and matmuls
    bf16             bf16 autocast
    bf16_cl          bf16 autocast + channels_last_3d model and input
    bf16_cl_compile  the latter under torch.compile

A training step is forward, cross-entropy, backward and an SGD (momentum) step on a fixed random
batch (the model alone, no data loading). Inference is a forward in eval mode under
torch.inference_mode. FLOPs are counted once per model with torch.utils.flop_counter
(convolutions, matmuls: the ops that matter), for one forward (inference) and one forward +
backward (training); achieved TFLOP/s = counted FLOPs / measured time. Peak memory is
torch.cuda.max_memory_allocated over the timed steps (CUDA only). On a CPU the table adds this
process's CPU seconds per step, the fair cost measure when other jobs share the cores.

Examples:
    python benchmarks/bench_model.py                                  # the GPU table
    python benchmarks/bench_model.py --device cpu --batch 4 --width 16 --modes fp32 --steps 2 --warmup 1
    python benchmarks/bench_model.py --out benchmarks/last_run.md     # also write the table
"""

from __future__ import annotations

import argparse
import datetime
import gc
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tdrag.atomic import write_text
from tdrag.models.registry import MODEL_NAMES, build_model

MODES = ("fp32", "bf16", "bf16_cl", "bf16_cl_compile")
CL = torch.channels_last_3d


@dataclass
class Row:
    model: str
    mode: str
    train_ms: float | None = None
    train_cpu_s: float | None = None
    train_clips_s: float | None = None
    train_tflops: float | None = None
    train_peak_gib: float | None = None
    infer_ms: float | None = None
    infer_cpu_s: float | None = None
    infer_clips_s: float | None = None
    infer_tflops: float | None = None
    infer_peak_gib: float | None = None
    error: str = ""


def count_flops(name: str, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """FLOPs of one forward and of one forward + backward at the benchmark's batch, fp32 eager."""
    model = make_model(name, args, device)
    x, y = make_batch(args, device)
    with FlopCounterMode(display=False) as counter:
        with torch.no_grad():
            model(x)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    train = counter.get_total_flops()
    del model
    cleanup(device)
    return float(forward), float(train)


def make_model(name: str, args: argparse.Namespace, device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, num_classes=7, width=args.width).to(device)


def make_batch(args: argparse.Namespace, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size, generator=g).to(device)
    y = torch.randint(0, 7, (args.batch,), generator=g).to(device)
    return x, y


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cleanup(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def timed(step: Callable[[], None], warmup: int, steps: int, device: torch.device) -> tuple[float, float, float | None]:
    """Wall seconds per step after ``warmup`` untimed steps, this process's CPU seconds per step
    (all threads; on a shared CPU the fair measure of cost), and peak GiB allocated (CUDA)."""
    for _ in range(warmup):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    cpu_seconds = (time.process_time() - cpu_start) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return seconds, cpu_seconds, peak


def run_mode(name: str, mode: str, flops: tuple[float, float], args: argparse.Namespace, device: torch.device) -> Row:
    amp = mode.startswith("bf16")
    channels_last = "_cl" in mode
    compiled = mode.endswith("_compile")
    model = make_model(name, args, device)
    x, y = make_batch(args, device)
    if channels_last:
        model = model.to(memory_format=CL)
        x = x.to(memory_format=CL)
    runner = torch.compile(model, mode=args.compile_mode) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(runner(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def infer_step() -> None:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            runner(x)

    row = Row(name, mode)
    model.train()
    # Compilation happens in the first steps: give compiled runs more warm-up.
    warmup = args.warmup + (3 if compiled else 0)
    seconds, cpu_seconds, row.train_peak_gib = timed(train_step, warmup, args.steps, device)
    row.train_ms = seconds * 1e3
    row.train_cpu_s = cpu_seconds if device.type == "cpu" else None
    row.train_clips_s = args.batch / seconds
    row.train_tflops = flops[1] / seconds / 1e12
    opt.zero_grad(set_to_none=True)
    model.eval()
    seconds, cpu_seconds, row.infer_peak_gib = timed(infer_step, warmup, args.steps, device)
    row.infer_ms = seconds * 1e3
    row.infer_cpu_s = cpu_seconds if device.type == "cpu" else None
    row.infer_clips_s = args.batch / seconds
    row.infer_tflops = flops[0] / seconds / 1e12
    del runner, model, opt, x, y
    if compiled:
        torch._dynamo.reset()
    cleanup(device)
    return row


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fmt_tflops(value: float | None) -> str:
    """Three significant digits: 332, 94.3, 0.0123 (CPU smoke runs are far below 1)."""
    return "-" if value is None else f"{value:.3g}"


def markdown(rows: list[Row], flops: dict[str, tuple[float, float]], args: argparse.Namespace, device: torch.device) -> str:
    if device.type == "cuda":
        card = torch.cuda.get_device_name(device)
    else:
        card = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [
        f"Device: {card}; torch {torch.__version__}; {datetime.date.today().isoformat()}",
        f"Setting: B={args.batch}, T={args.frames}, {args.size}x{args.size}, width {args.width}, "
        f"{args.steps} timed steps after {args.warmup} warm-up",
        f"Command: python {' '.join(sys.argv)}",
        "",
        "| model | mode | train ms/step | train CPU-s/step | train clips/s | train TFLOP/s | train peak GiB "
        "| infer ms/step | infer CPU-s/step | infer clips/s | infer TFLOP/s | infer peak GiB |",
        "|---|---|" + "---:|" * 10,
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.model} | {r.mode} | failed: {r.error} |" + " |" * 9)
            continue
        lines.append(
            f"| {r.model} | {r.mode} | {fmt(r.train_ms)} | {fmt(r.train_cpu_s, 2)} | {fmt(r.train_clips_s)} "
            f"| {fmt_tflops(r.train_tflops)} | {fmt(r.train_peak_gib, 2)} | {fmt(r.infer_ms)} | {fmt(r.infer_cpu_s, 2)} "
            f"| {fmt(r.infer_clips_s)} | {fmt_tflops(r.infer_tflops)} | {fmt(r.infer_peak_gib, 2)} |"
        )
    lines += ["", "| model | GFLOP/clip forward | GFLOP/clip forward+backward |", "|---|---:|---:|"]
    for name, (forward, train) in flops.items():
        lines.append(f"| {name} | {forward / args.batch / 1e9:.3g} | {train / args.batch / 1e9:.3g} |")
    by_key = {(r.model, r.mode): r for r in rows if not r.error}
    ratios = []
    for mode in args.modes:
        base, ours = by_key.get(("r3d18", mode)), by_key.get(("tdrag", mode))
        if base and ours:
            ratios.append(f"| {mode} | {ours.train_tflops / base.train_tflops:.2f} | {ours.infer_tflops / base.infer_tflops:.2f} |")
    if ratios:
        lines += ["", "| mode | tdrag / r3d18 train TFLOP/s | tdrag / r3d18 infer TFLOP/s |", "|---|---:|---:|", *ratios, ""]
        for mode in args.modes:
            base, ours = by_key.get(("r3d18", mode)), by_key.get(("tdrag", mode))
            if base and ours:
                verdict = "met" if ours.train_tflops >= 0.9 * base.train_tflops else "NOT met"
                lines.append(f"- {mode}: TFLOP/s ratio (TDRAG / r3d18): {ours.train_tflops / base.train_tflops:.2f} "
                             f"(training; goal >= 0.9: {verdict})")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:1, cpu (default cuda)")
    parser.add_argument("--models", default="r3d18,tdrag", help=f"comma-separated, from {', '.join(MODEL_NAMES)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compiled runs get 3 more)")
    parser.add_argument("--compile-mode", default=None, help="torch.compile mode (default: torch's default)")
    parser.add_argument("--out", default=None, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for model in args.models:
        if model not in MODEL_NAMES:
            parser.error(f"--models: unknown model {model!r} (known: {', '.join(MODEL_NAMES)})")
    for mode in args.modes:
        if mode not in MODES:
            parser.error(f"--modes: unknown mode {mode!r} (known: {', '.join(MODES)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            print("bench_model.py: --device cuda but CUDA is not available (use --device cpu for a smoke run)", file=sys.stderr)
            return 2
        torch.backends.cudnn.benchmark = True
    # The "fp32" mode means what a user gets with TF32 on (Ampere and later): convs and matmuls in TF32.
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    flops = {name: count_flops(name, args, device) for name in args.models}
    rows = []
    for name in args.models:
        for mode in args.modes:
            print(f"[bench] {name} {mode} ...", file=sys.stderr, flush=True)
            try:
                rows.append(run_mode(name, mode, flops[name], args, device))
            except Exception as exc:  # one failing mode (OOM, compiler) must not lose the others
                rows.append(Row(name, mode, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"))
                torch._dynamo.reset()
                cleanup(device)
    table = markdown(rows, flops, args, device)
    print(table)
    if args.out:
        write_text(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
