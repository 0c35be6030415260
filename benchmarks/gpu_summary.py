"""The Markdown block for benchmarks/RESULTS.md from a benchmarks/gpu_suite.sh output folder.

    python benchmarks/gpu_summary.py OUT_DIR

Copies the measured tables as they are (nothing is recomputed or rounded again) and adds the
pass/fail line of the gpu tests, each step's exit status and time, and the headline figures:
``TFLOP/s ratio (TDRAG / r3d18)`` per mode (from bench_model.md), the loader/model-only epoch
ratio and the projected 5-fold x 100-epoch DFEW protocol (from bench_epoch.json).
"""

from __future__ import annotations

import datetime
import json
import re
import sys
from pathlib import Path


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python benchmarks/gpu_summary.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    lines = [f"### GPU suite, {datetime.date.today().isoformat()}", "",
             f"Machine: {_read(out / 'machine.txt').strip() or 'unknown'}",
             "Command: `bash benchmarks/gpu_suite.sh OUT_DIR` (each step's own command is in the script)", ""]
    tests = _read(out / "gpu_tests.log")
    closing = [l for l in tests.splitlines() if re.search(r"\d+ (passed|failed|error)", l)]
    lines.append(f"gpu tests: {closing[-1].strip('= ') if closing else 'no result (see gpu_tests.log)'}")
    steps = _read(out / "steps.txt").strip()
    if steps:
        lines += ["", "| step | exit status | seconds |", "|---|---:|---:|"]
        for entry in steps.splitlines():
            name, rc, seconds = entry.split()
            lines.append(f"| {name} | {rc.split('=')[1]} | {seconds.split('=')[1]} |")
    model = _read(out / "bench_model.md")
    if model:
        lines += ["", "#### bench_model.py", "", model.strip()]
    epoch = out / "bench_epoch.json"
    if epoch.is_file():
        r = json.loads(epoch.read_text())
        lines += ["", "#### bench_epoch.py", "",
                  f"- {r['model']} w{r['width']} {r['mode']}, T={r['frames']} {r['crop']}x{r['crop']}, batch {r['batch']}, "
                  f"{r['workers']} workers, {r['clips']} training clips: epoch through the cache loader "
                  f"{r['loader_clips_per_s']} clips/s, model only {r['model_only_clips_per_s']} clips/s, "
                  f"ratio {r['ratio']} (goal >= 0.9: {'met' if r['goal_met'] else 'NOT met'})"]
        if r.get("projected_5x100_hours") is not None:
            lines.append(f"- evaluation {r['eval_clips_per_s']} clips/s; projected 5-fold x 100-epoch DFEW protocol: "
                         f"{r['projected_5x100_hours']} h of wall time")
    analysis = _read(out / "bench_analysis.md")
    if analysis:
        lines += ["", "#### bench_analysis.py --device cuda", "", analysis.strip()]
    print("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
