"""Data-path speed: the frame cache against decoding JPEGs every epoch, and `prepare` against a
bare decode loop.

Measures, in one run, on one synthetic DFEW-format tree (``tdrag.data.synthetic``):

1. ``bare``: a bare ``cv2.imread`` + ``cv2.resize(S x S, INTER_AREA)`` loop over every frame file,
   in ``--workers`` processes: the floor any decoder has to pay.
2. ``prepare``: ``tdrag.data.prepare.prepare_cache`` with the same workers, redundancy and uniform
   keyframes, as source frames per second (every frame of every clip counts, as in 1).
3. ``reduced``: the design not taken: choose redundancy keyframes on reduced grey decodes
   (``IMREAD_REDUCED_GRAYSCALE_4``), then decode the T keyframes again in colour (no writes).
4. One training epoch through each loader:
   ``cache``: ``make_loader`` over the cache + ``train_transform`` on the CPU, giving model-ready
   float ``(B, 3, T, crop, crop)`` batches (random resized crop, flip, normalisation);
   ``cache_u8``: ``make_loader`` alone, uint8 ``(B, T, S, S, 3)`` batches: what a GPU run's host
   side does, since the transform then runs on the device;
   ``jpeg``: the way common DFER loaders do it, float batches as ``cache``: per clip, T uniformly
   spaced frames, each decoded with PIL, resized, cropped with the clip's random box, flipped,
   converted to a tensor and normalised in the Dataset.
   Each epoch drops every batch once made, as a training loop does.

Each loader figure is given twice. Wall clock: ``--loader-workers`` DataLoader processes, the
transform in this process on ``--main-threads`` torch threads (as in a CPU-only training loop),
median of ``--repeats`` epochs after a warm-up epoch (workers started, files in the page cache);
on a shared machine this mostly measures the share of the cores the run gets. Per CPU-second:
the same epochs in this process (``num_workers=0``, one torch thread), CPU time (user + system)
counted, median of ``--repeats``: the cost of each data path, robust to other load. The decode
figures (1-3) come the same two ways.

Usage::

    python benchmarks/bench_loader.py --clips 200 --size 224 --workers 2
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from tdrag.data.augment import NORM_MEAN, NORM_STD, train_transform
from tdrag.data.cache import open_cache
from tdrag.data.dfew import read_folds
from tdrag.data.keyframes import select_keyframes, uniform_indices
from tdrag.data.prepare import prepare_cache


def unique_clips(root: Path) -> list[tuple[list[str], int]]:
    clips = {}
    for splits in read_folds(root).values():
        for result in splits.values():
            for clip in result.clips:
                clips[clip.video_id] = ([str(p) for p in clip.frames], clip.label)
    return [clips[k] for k in sorted(clips)]


# ---------------------------------------------------------------- decode-side baselines

def _init_cv2() -> None:
    cv2.setNumThreads(1)


def _bare(job: tuple[list[str], int]) -> int:
    paths, size = job
    for p in paths:
        cv2.resize(cv2.imread(p), (size, size), interpolation=cv2.INTER_AREA)
    return len(paths)


def _reduced(job: tuple[list[str], int, int]) -> int:
    paths, size, num = job
    grey = np.stack([cv2.imread(p, cv2.IMREAD_REDUCED_GRAYSCALE_4) for p in paths])
    for i in np.unique(select_keyframes(grey, num, "redundancy")):
        cv2.cvtColor(cv2.resize(cv2.imread(paths[i]), (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    return len(paths)


def pool_frames_per_s(fn, jobs, workers: int) -> float:
    start = time.perf_counter()
    with multiprocessing.get_context().Pool(workers, initializer=_init_cv2) as pool:
        frames = sum(pool.imap_unordered(fn, jobs, chunksize=4))
    return frames / (time.perf_counter() - start)


def cpu_seconds(fn) -> float:
    """CPU time (user + system) ``fn()`` takes in this process, one thread: robust to other load."""
    start = time.process_time()
    fn()
    return time.process_time() - start


# ---------------------------------------------------------------- the per-frame JPEG loader

class JpegClipDataset(Dataset):
    """Decode T frames per clip with PIL each time, with per-clip random crop/flip (common DFER loaders)."""

    def __init__(self, clips, num: int, size: int, crop: int, seed: int = 0) -> None:
        self.clips, self.num, self.size, self.crop = clips, num, size, crop
        self.rng = np.random.default_rng(seed)
        self.mean = np.array(NORM_MEAN, dtype=np.float32)
        self.std = np.array(NORM_STD, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int):
        paths, label = self.clips[i]
        s, c = self.size, self.crop
        area = self.rng.uniform(0.6, 1.0) * s * s
        r = math.exp(self.rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = min(s, round(math.sqrt(area * r))), min(s, round(math.sqrt(area / r)))
        left, top = self.rng.integers(0, s - w + 1), self.rng.integers(0, s - h + 1)
        flip = self.rng.random() < 0.5
        frames = []
        for idx in uniform_indices(len(paths), self.num):
            with Image.open(paths[idx]) as im:
                im = im.convert("RGB").resize((s, s), Image.BILINEAR)
            im = im.crop((left, top, left + w, top + h)).resize((c, c), Image.BILINEAR)
            if flip:
                im = im.transpose(Image.FLIP_LEFT_RIGHT)
            frames.append((np.asarray(im, dtype=np.float32) / 255.0 - self.mean) / self.std)
        clip = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).contiguous()  # (3, T, c, c)
        return clip, label


def consume(loader, transform=None) -> int:
    """Run one epoch, dropping each batch once made (as a training loop does); return clips seen."""
    n = 0
    for batch in loader:
        x = batch[0] if transform is None else transform(batch[0])
        n += x.shape[0]
        del x, batch  # let the next batch reuse this one's memory
    return n


def epoch_clips_per_s(loader, transform=None, repeats: int = 3) -> float:
    """Median clips/s (wall clock) of ``repeats`` epochs after one warm-up epoch."""
    consume(loader, transform)  # workers started, files in the page cache
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = consume(loader, transform)
        rates.append(n / (time.perf_counter() - start))
    return float(np.median(rates))


def clips_per_cpu_s(make, transform=None, repeats: int = 3) -> float:
    """Median clips per CPU-second of ``repeats`` epochs of ``make()`` (a fresh in-process loader)."""
    consume(make(), transform)
    rates = []
    for _ in range(repeats):
        n = 0

        def epoch():
            nonlocal n
            n = consume(make(), transform)

        seconds = cpu_seconds(epoch)
        rates.append(n / seconds)
    return float(np.median(rates))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--size", type=int, default=224, help="synthetic frame side (DFEW: 224)")
    parser.add_argument("--preset", default="easy")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--cache-size", type=int, default=128)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (bare loop and prepare)")
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="existing DFEW-format tree (default: generate one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep-data", type=Path, default=None, help="generate the tree here and keep it")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loader figure (their median)")
    parser.add_argument(
        "--main-threads", type=int, default=1,
        help="torch threads in this process for the wall-clock loader runs (2 loader workers already fill 2 cores)",
    )
    parser.add_argument("--skip-decode", action="store_true", help="only build the cache; skip the decode-side figures")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_loader-") as tmp:
        tmp = Path(tmp)
        root = args.data
        if root is None:
            from tdrag.data.synthetic import generate_dataset

            start = time.perf_counter()
            root = generate_dataset(args.keep_data or tmp / "data", args.clips, args.preset, seed=0, size=args.size, workers=args.workers)
            print(f"generated {args.clips} clips of {args.size}x{args.size} in {time.perf_counter() - start:.1f} s")
        clips = unique_clips(root)
        lengths = np.array([len(p) for p, _ in clips])
        frames_total = int(lengths.sum())
        print(f"{len(clips)} clips, {frames_total} frames (length {lengths.min()}..{lengths.max()}, mean {lengths.mean():.1f})")
        S, T = args.cache_size, args.frames
        fig = {"clips": len(clips), "frames": frames_total, "mean_length": float(lengths.mean())}

        if args.skip_decode:
            prepare_cache(root, tmp / "cache_redundancy", frames=T, size=S, keyframes="redundancy", workers=args.workers, progress=False)
        else:
            # Warm the page cache so that no contender pays the disk.
            pool_frames_per_s(_bare, [(p, S) for p, _ in clips], args.workers)
            # Wall clock with --workers processes (sensitive to other load on the machine) ...
            fig["bare_fps"] = pool_frames_per_s(_bare, [(p, S) for p, _ in clips], args.workers)
            for method in ("redundancy", "uniform"):
                start = time.perf_counter()
                prepare_cache(root, tmp / f"cache_{method}", frames=T, size=S, keyframes=method, workers=args.workers, progress=False)
                fig[f"prepare_{method}_fps"] = frames_total / (time.perf_counter() - start)
            fig["reduced_fps"] = pool_frames_per_s(_reduced, [(p, S, T) for p, _ in clips], args.workers)
            # ... and frames per CPU-second in this process (one thread): the efficiency comparison.
            _init_cv2()
            torch.set_num_threads(1)
            fig["bare_fpcs"] = frames_total / cpu_seconds(lambda: [_bare((p, S)) for p, _ in clips])
            for method in ("redundancy", "uniform"):
                fig[f"prepare_{method}_fpcs"] = frames_total / cpu_seconds(
                    lambda: prepare_cache(root, tmp / f"cpu_{method}", frames=T, size=S, keyframes=method, workers=1, progress=False)
                )
            fig["reduced_fpcs"] = frames_total / cpu_seconds(lambda: [_reduced((p, S, T)) for p, _ in clips])
            print(f"{'':30s} {'frames/s':>9s} {'x bare':>7s} {'frames/CPU-s':>13s} {'x bare':>7s}")
            for key in ("bare", "prepare_redundancy", "prepare_uniform", "reduced"):
                wall, cpu = fig[key + "_fps"], fig[key + "_fpcs"]
                print(f"{key:30s} {wall:9.0f} {wall / fig['bare_fps']:7.2f} {cpu:13.0f} {cpu / fig['bare_fpcs']:7.2f}")

        cache = open_cache(tmp / "cache_redundancy")
        rows = np.arange(len(cache))
        from tdrag.data.loader import make_loader

        gen = torch.Generator().manual_seed(0)
        transform = lambda x: train_transform(x, crop=args.crop, generator=gen)  # noqa: E731
        jpeg_set = JpegClipDataset(clips, T, S, args.crop)
        n_rep = args.repeats
        # Clips per CPU-second: epochs in this process (num_workers=0, one torch thread).
        torch.set_num_threads(1)
        cache_loader0 = lambda: make_loader(cache, rows, args.batch, shuffle=True, num_workers=0)  # noqa: E731
        jpeg_loader0 = lambda: DataLoader(jpeg_set, batch_size=args.batch, shuffle=True, num_workers=0)  # noqa: E731
        load_start = os.getloadavg()[0]
        fig["cache_clips_per_cpu_s"] = clips_per_cpu_s(cache_loader0, transform, n_rep)
        fig["cache_u8_clips_per_cpu_s"] = clips_per_cpu_s(cache_loader0, None, n_rep)
        fig["jpeg_clips_per_cpu_s"] = clips_per_cpu_s(jpeg_loader0, None, n_rep)
        # Wall clock: --loader-workers processes; the transform runs in this process, as in a
        # CPU-only training loop, on --main-threads threads. Median of the timed epochs.
        torch.set_num_threads(max(1, args.main_threads))
        cache_loader = make_loader(cache, rows, args.batch, shuffle=True, num_workers=args.loader_workers)
        fig["cache_clips_per_s"] = epoch_clips_per_s(cache_loader, transform, n_rep)
        fig["cache_u8_clips_per_s"] = epoch_clips_per_s(cache_loader, None, n_rep)
        del cache_loader
        jpeg_loader = DataLoader(
            jpeg_set, batch_size=args.batch, shuffle=True,
            num_workers=args.loader_workers, persistent_workers=args.loader_workers > 0,
        )
        fig["jpeg_clips_per_s"] = epoch_clips_per_s(jpeg_loader, None, n_rep)
        del jpeg_loader
        for key in ("cache", "cache_u8"):
            fig[f"{key}_ratio"] = fig[f"{key}_clips_per_s"] / fig["jpeg_clips_per_s"]
            fig[f"{key}_ratio_cpu"] = fig[f"{key}_clips_per_cpu_s"] / fig["jpeg_clips_per_cpu_s"]
        fig["load_average"] = [load_start, os.getloadavg()[0]]
        print(f"{'':44s} {'clips/s':>9s} {'x JPEG':>7s} {'clips/CPU-s':>12s} {'x JPEG':>7s}")
        for key, label in (
            ("cache", "cache: make_loader + train_transform (float)"),
            ("cache_u8", "cache: make_loader only (uint8, GPU host)"),
            ("jpeg", "per-frame JPEG (PIL) loader (float)"),
        ):
            wall, cpu = fig[f"{key}_clips_per_s"], fig[f"{key}_clips_per_cpu_s"]
            print(f"{label:44s} {wall:9.1f} {wall / fig['jpeg_clips_per_s']:6.1f}x {cpu:12.1f} {cpu / fig['jpeg_clips_per_cpu_s']:6.1f}x")
        print(
            f"torch {torch.__version__}, opencv {cv2.__version__}, "
            f"load average {load_start:.1f} at the loader runs' start, {os.getloadavg()[0]:.1f} at their end"
        )
        if args.json:
            args.json.write_text(json.dumps(fig, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
