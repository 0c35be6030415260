"""Time `tdrag demo` end to end (synthesise, prepare, train, evaluate) and report its test WAR.

Goal (issue 17): `make demo` on 2 idle CPU cores, after installation, under 45 s of demo time
(synthesis + prepare + training and evaluation, the stages the demo logs; Python's start-up and
the imports come on top, see the wall time) with test WAR >= 0.95 on the easy synthetic set.
This runs ``tdrag demo --fresh`` in a subprocess pinned to the
chosen cores (``taskset``, when present) so nothing is reused from an earlier run, and reports
wall time, the CPU seconds the demo used (user + sys of the child: the fair measure when other
jobs share the machine), the load average before and after, the per-stage times from the demo's
log, and the last and best epochs' test WAR/UAR from its report.

Examples:
    python benchmarks/bench_demo.py                          # cores 0,1; out in a temp folder
    python benchmarks/bench_demo.py --cores 0,1 --out runs/bench_demo --json demo.json
    python benchmarks/bench_demo.py -- train.epochs=8        # extra config overrides after --
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from tdrag.runs.layout import RunPaths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", default="0,1", help="CPU cores to pin the demo to (default 0,1; '' = no pinning)")
    parser.add_argument("--out", default=None, help="demo folder (default: a temp folder, removed afterwards)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    parser.add_argument("overrides", nargs="*", help="config overrides passed to tdrag demo")
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_demo_")) / "demo"
    command = [sys.executable, "-m", "tdrag", "demo", "--out", str(out), "--fresh", "--no-progress", *args.overrides]
    if args.cores and shutil.which("taskset"):
        command = ["taskset", "-c", args.cores, *command]
    load_before = os.getloadavg()
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    if completed.returncode != 0:
        print(completed.stdout[-3000:], completed.stderr[-3000:], sep="\n", file=sys.stderr)
        print(f"bench_demo: tdrag demo failed with exit code {completed.returncode}", file=sys.stderr)
        return 1
    cpu = (usage_after.ru_utime - usage_before.ru_utime) + (usage_after.ru_stime - usage_before.ru_stime)
    run = RunPaths(out / "run")
    metrics = json.loads(run.metrics.read_text())
    stages = {k: float(v) for k, v in re.findall(r"(synthesise|prepare|train) ([0-9.]+)s", completed.stderr)}
    demo_seconds = sum(stages.values())
    epochs = len(run.log.read_text().strip().splitlines()) - 1
    result = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(command),
        "cores": args.cores or "all",
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "stage_seconds": stages,
        "epochs": epochs,
        "last_epoch": metrics["last"]["epoch"],
        "last_test_war": metrics["last"]["test"]["war"],
        "last_test_uar": metrics["last"]["test"]["uar"],
        "best_epoch": metrics["best"]["epoch"] if metrics.get("best") else None,
        "best_test_war": metrics["best"]["test"]["war"] if metrics.get("best") else None,
        "test_clips": metrics["last"]["test"]["num_clips"],
        "demo_seconds": round(demo_seconds, 1),
        "goal_time_met": demo_seconds < 45,
        "goal_war_met": metrics["last"]["test"]["war"] >= 0.95,
    }
    print(json.dumps(result, indent=2))
    print(f"| {result['date']} | {result['cores']} | {result['demo_seconds']:.0f} s | {wall:.0f} s | {cpu:.0f} CPU-s | "
          f"{load_before[0]:.1f} / {load_after[0]:.1f} | {result['last_test_war']:.3f} (epoch {result['last_epoch']}) | "
          f"{result['last_test_uar']:.3f} | {result['test_clips']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if not args.out:
        shutil.rmtree(out.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
