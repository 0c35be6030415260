"""``tdrag prepare``: decode a DFEW-format tree once into a uint8 frame cache."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Decode every clip of a DFEW-format tree once, choose T keyframes, resize them to SxS and store
them as one uint8 memory-mapped array with an index and a manifest (folds, counts, skipped clips).
--root is the folder that holds Clip/ and EmoLabel_DataSplit/ (as DFEW is distributed).
A second run with the same settings does nothing; a run that is killed leaves no complete-looking
cache behind.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="decode DFEW clips once into a keyframe cache",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", default="dfew", choices=["dfew"], help="dataset layout (default: dfew)")
    parser.add_argument("--root", required=True, help="DFEW root: the folder holding Clip/ and EmoLabel_DataSplit/")
    parser.add_argument("--out", required=True, help="cache folder to create")
    parser.add_argument("--frames", type=int, default=16, help="keyframes per clip, T (default: 16)")
    parser.add_argument("--size", type=int, default=128, help="side of the stored square frames, S (default: 128)")
    parser.add_argument(
        "--keyframes", default="redundancy", choices=["redundancy", "uniform"], help="keyframe selection (default: redundancy)"
    )
    parser.add_argument(
        "--frames-dir",
        default="auto",
        choices=["auto", "clip_224x224", "clip_224x224_16f"],
        help="which DFEW frame folder to read (default: auto = the full clips when present)",
    )
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all CPUs)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad clip instead of skipping it")
    parser.add_argument("--overwrite", action="store_true", help="replace a cache built with other settings")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from tdrag.data.cache import MANIFEST_FILE, CacheError, prepare_cache
    from tdrag.data.dfew import DFEWError

    try:
        out = prepare_cache(
            args.root,
            args.out,
            frames=args.frames,
            size=args.size,
            keyframes=args.keyframes,
            workers=args.workers,
            strict=args.strict,
            frames_dir=args.frames_dir,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (DFEWError, CacheError, ValueError) as exc:
        print(f"tdrag prepare: error: {exc}", file=sys.stderr)
        return 1
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    print(f"cache: {out}")
    print(f"  {manifest['num_clips']} clips x {manifest['frames']} frames of {manifest['size']}x{manifest['size']} ({manifest['keyframes']} keyframes)")
    for fold, splits in manifest["counts"].items():
        print(f"  fold {fold}: " + ", ".join(f"{s} {c['clips']}" for s, c in splits.items()))
    if manifest["skipped"]:
        print(f"  skipped {len(manifest['skipped'])} (listed in {out / MANIFEST_FILE}):")
        for s in manifest["skipped"][:10]:
            where = "" if s["path"] in s["reason"] else f"{s['path']}: "
            print(f"    {s['video_id']}: {where}{s['reason']}")
        if len(manifest["skipped"]) > 10:
            print(f"    ... and {len(manifest['skipped']) - 10} more")
    return 0
