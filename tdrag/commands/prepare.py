"""``tdrag prepare``: decode a dataset tree (DFEW, FERV39k, MAFW) once into a uint8 frame cache."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Decode every clip of a dataset tree once, choose T keyframes, resize them to SxS and store them
as one uint8 memory-mapped array with an index and a manifest (classes, folds, counts, skipped
clips, a fingerprint of the sources). --root is the dataset's folder as distributed (DFEW: the
folder holding Clip/ and EmoLabel_DataSplit/; FERV39k: 2_ClipsforFaceCrop/ and 4_setups/; MAFW:
data/frames/ and 'Train & Test Set/'); --dataset names its layout. A second run with the same settings and unchanged
sources does nothing; changed sources (an edited split file, replaced frames) are named and
refused until --overwrite rebuilds. --overwrite only ever replaces a tdrag cache (or an empty
folder). A run that is killed leaves no complete-looking cache behind.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="decode DFEW clips once into a keyframe cache",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from tdrag.data.datasets import dataset_names

    parser.add_argument("--dataset", default="dfew", choices=list(dataset_names()), help="dataset layout (default: dfew)")
    parser.add_argument("--root", required=True, help="dataset root as distributed (DFEW: the folder holding Clip/ "
                                                      "and EmoLabel_DataSplit/)")
    parser.add_argument("--out", required=True, help="cache folder to create")
    parser.add_argument("--frames", type=int, default=16, help="keyframes per clip, T (default: 16)")
    parser.add_argument("--size", type=int, default=128, help="side of the stored square frames, S (default: 128)")
    parser.add_argument(
        "--keyframes", default="redundancy", choices=["redundancy", "uniform"], help="keyframe selection (default: redundancy)"
    )
    parser.add_argument(
        "--frames-dir",
        default="auto",
        help="DFEW: which frame folder to read, auto | clip_224x224 | clip_224x224_16f (default: auto = the full "
             "clips when present); FERV39k / MAFW: the frames folder if renamed (under --root, or absolute)",
    )
    parser.add_argument("--split-dir", default="auto",
                        help="FERV39k / MAFW: the split folder if renamed (FERV39k: the one holding the setups, "
                             "4_setups/; MAFW: 'Train & Test Set/' or a folder holding set_<k>/)")
    parser.add_argument("--setup", default="All_scenes",
                        help="FERV39k: which setup of 4_setups/ to read (default: All_scenes, the benchmark)")
    parser.add_argument("--verify", action="store_true",
                        help="decode every frame of every clip (uniform keyframes otherwise decode only the chosen ones)")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all CPUs)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad clip instead of skipping it")
    parser.add_argument("--overwrite", action="store_true",
                        help="rebuild a tdrag cache made with other settings or from changed sources")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


# prepare_cache's parameters as this command's flags, in its messages (tdrag.data.prepare.PrepareError).
FLAGS = {"out": "--out", "overwrite": "--overwrite", "strict": "--strict", "keyframes": "--keyframes",
         "frames": "--frames", "size": "--size"}


def run(args: argparse.Namespace) -> int:
    import json

    from tdrag.data.cache import MANIFEST_FILE
    from tdrag.data.clips import DatasetError
    from tdrag.data.cache_decision import PrepareError

    layout_options: dict[str, str] = {}
    if args.dataset == "dfew":
        if args.frames_dir not in ("auto", "clip_224x224", "clip_224x224_16f"):
            raise DatasetError(f"--frames-dir: {args.frames_dir!r} is not a DFEW frame folder "
                               "(auto, clip_224x224 or clip_224x224_16f)")
    else:
        layout_options = {"frames_dir": args.frames_dir, "split_dir": args.split_dir}
        if args.dataset == "ferv39k":
            layout_options["setup"] = args.setup
    try:
        out = _prepare(args, layout_options)
    except PrepareError as exc:
        raise exc.reworded(FLAGS) from None
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    print(f"cache: {out}")
    print(f"  {manifest['num_clips']} clips x {manifest['frames']} frames of {manifest['size']}x{manifest['size']} "
          f"({manifest['keyframes']} keyframes; decoded: {manifest.get('decoded', 'n/a')})")
    print(f"  {manifest.get('dataset', 'dfew')}: {len(manifest['classes'])} classes ({', '.join(manifest['classes'])})")
    for fold, splits in manifest["counts"].items():
        print(f"  fold {fold}: " + ", ".join(f"{s} {c['clips']}" for s, c in splits.items()))
    if manifest["skipped"]:
        print(f"  skipped {len(manifest['skipped'])} (listed in {out / MANIFEST_FILE}):")
        for s in manifest["skipped"][:10]:
            where = "" if s["path"] in s["reason"] else f"{s['path']}: "
            print(f"    {s['video_id']}: {where}{s['reason']}")
        if len(manifest["skipped"]) > 10:
            print(f"    ... and {len(manifest['skipped']) - 10} more")
    ignored = manifest.get("ignored_files") or []
    if ignored:
        first = ignored[0]
        print(f"  {len(ignored)} clip folder(s) hold images without a frame number, left out (first: "
              f"{first['video_id']}: {', '.join(first['files'][:3])}); listed in {out / MANIFEST_FILE}")
    return 0


def _prepare(args: argparse.Namespace, layout_options: dict[str, str]):
    """``prepare_cache`` with this command's arguments; returns the cache folder."""
    from tdrag.data.prepare import prepare_cache

    return prepare_cache(
        args.root,
        args.out,
        dataset=args.dataset,
        frames=args.frames,
        size=args.size,
        keyframes=args.keyframes,
        workers=args.workers,
        strict=args.strict,
        frames_dir=args.frames_dir,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        verify=args.verify,
        layout_options=layout_options or None,
    )
