"""Time ``tdrag synth`` (drawing + JPEG + masks, written to disk) and redundancy keyframes.

    python benchmarks/bench_synth.py [--clips 1000] [--size 112] [--workers 2] [--preset easy]

Goals (issue #2): 1,000 clips of 112x112 in under a minute on 2 cores; redundancy keyframes well
under 5 ms per 96-frame 112x112 clip. The data set goes to a temporary folder that is deleted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from tdrag.data.keyframes import redundancy_keyframes, uniform_indices
from tdrag.data.synthetic import generate_dataset, load_meta


def _cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished children (pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_synth(out: Path, clips: int, size: int, workers: int, preset: str) -> dict:
    cpu0, start = _cpu_seconds(), time.perf_counter()
    generate_dataset(out, clips, preset=preset, seed=0, size=size, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu0
    meta = load_meta(out)
    frames = sum(row["length"] for row in meta["clips"])
    distinct = sum(row["distinct_frames"] for row in meta["clips"])
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seconds": seconds, "cpu": cpu, "frames": frames, "distinct": distinct, "bytes": disk}


def bench_keyframes(root: Path, clips: int, num: int = 16) -> dict:
    """Decode ``clips`` clips, stretch each to 96 frames (held runs kept), time the selectors."""
    meta = load_meta(root)
    decoded = []
    for row in meta["clips"][:clips]:
        folder = root / "Clip" / "clip_224x224" / row["video_id"]
        frames = [cv2.imread(str(folder / f"{n}.jpg"))[..., ::-1] for n in range(1, row["length"] + 1)]
        clip = np.stack(frames)
        decoded.append(clip[uniform_indices(len(clip), 96)])  # the 96-frame case of the goal
    for clip in decoded[:3]:
        redundancy_keyframes(clip, num)  # warm-up (imports, caches)
    cpu0, start = time.process_time(), time.perf_counter()
    for clip in decoded:
        redundancy_keyframes(clip, num)
    per_clip = (time.perf_counter() - start) / len(decoded)
    cpu_per_clip = (time.process_time() - cpu0) / len(decoded)
    return {"ms_per_clip": per_clip * 1e3, "cpu_ms_per_clip": cpu_per_clip * 1e3, "clips": len(decoded),
            "shape": decoded[0].shape}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--preset", default="easy", choices=["easy", "hard"])
    parser.add_argument("--keyframe-clips", type=int, default=100)
    args = parser.parse_args()

    # Wall time is what the goals are about; CPU time and the load average show how much of the
    # machine the run actually had (other processes on a shared box slow the wall clock).
    print(f"load average before: {os.getloadavg()[0]:.1f} (1 min), {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        s = bench_synth(tmp / "data", args.clips, args.size, args.workers, args.preset)
        print(f"synth: {args.clips} clips ({args.preset}, {args.size}x{args.size}, {args.workers} workers, "
              f"{os.cpu_count()} CPUs): {s['seconds']:.1f} s wall ({s['cpu']:.1f} CPU-s) = "
              f"{args.clips / s['seconds']:.1f} clips/s, "
              f"{s['frames'] / s['seconds']:.0f} frames/s ({s['frames']} frames, {s['distinct']} distinct, "
              f"{s['bytes'] / 2**20:.0f} MiB)")
        k = bench_keyframes(tmp / "data", min(args.keyframe_clips, args.clips))
        print(f"redundancy keyframes: {k['ms_per_clip']:.2f} ms wall ({k['cpu_ms_per_clip']:.2f} ms CPU) per clip "
              f"of {k['shape']} uint8 "
              f"(T=16, mean of {k['clips']} clips, 1 process)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
