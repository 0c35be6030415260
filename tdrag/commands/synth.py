"""``tdrag synth``: write a synthetic data set in DFEW's, FERV39k's or MAFW's layout (tests, demo, notebooks)."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Draw faces whose expressions move from neutral to a class-specific apex and write them as the
dataset of --layout is distributed, with its class list:
  dfew     7 classes: Clip/clip_224x224/<id>/<n>.jpg, EmoLabel_DataSplit/{train,test}(single-labeled)/set_<k>.csv
  ferv39k  7 classes: 2_ClipsforFaceCrop/<Scene>/<Class>/<nnnn>/<n>.jpg, 4_setups/All_scenes/{train,test}_All.csv
           (and one setup per scene)
  mafw     11 classes: data/frames/<id>/<n>.jpg, Train & Test Set/single/no_caption/set_<k>/{train,test}.txt
plus, outside those folders, synthetic/masks/<id>.npz (per-frame masks of the regions carrying the
class signal, apex frame) and synthetic/meta.json. The same seed gives the same bytes, whatever --workers is.
Presets: easy (mild nuisances; a tiny model learns it on a CPU in minutes: the demo), medium (the
CPU benchmark: distractors and occluders, dynamics-only class pairs, held runs and brief apexes)
and hard (GPU scale, DFEW-like difficulty); see the README's "Synthetic data".
--out must be new, empty, or a previous synth output holding nothing else, at any depth (which is
replaced; a file of yours in it is named and the rewrite refused).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write a synthetic data set in DFEW's, FERV39k's or MAFW's layout",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, help="folder to create (becomes a dataset root in --layout's layout)")
    from tdrag.data.synthetic.layouts import LAYOUTS

    parser.add_argument("--layout", default="dfew", choices=list(LAYOUTS),
                        help="dataset layout and class list to write (default: dfew)")
    parser.add_argument("--clips", type=int, default=700, help="number of clips (default: 700)")
    from tdrag.data.synthetic.presets import PRESETS

    parser.add_argument("--preset", default="easy", choices=list(PRESETS), help="difficulty (default: easy)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--size", type=int, default=112, help="frame side in pixels (default: 112)")
    parser.add_argument("--workers", type=int, default=None, help="drawing processes (default: all CPUs)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from collections import Counter

    from tdrag.data.synthetic import generate_dataset, load_meta

    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    out = generate_dataset(
        args.out,
        args.clips,
        preset=args.preset,
        seed=args.seed,
        size=args.size,
        workers=workers,
        progress=not args.no_progress,
        layout=args.layout,
    )
    meta = load_meta(out)
    counts = Counter(row["label_name"] for row in meta["clips"])
    lengths = [row["length"] for row in meta["clips"]]
    print(f"synthetic data set: {out}")
    print(f"  {meta['num_clips']} clips ({meta['preset']}, seed {meta['seed']}, {meta['size']}x{meta['size']}), "
          f"{min(lengths)}..{max(lengths)} frames")
    print("  " + ", ".join(f"{name} {counts[name]}" for name in meta["classes"]))
    layout = meta.get("layout", "dfew")
    print(f"  read it with: tdrag prepare --dataset {layout} --root {out} --out CACHE")
    return 0
