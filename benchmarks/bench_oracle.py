"""What a synthetic preset asks of a model: the oracle on the renderer's own part curves.

    python benchmarks/bench_oracle.py --out runs/oracle                          # medium, 2,100 clips
    python benchmarks/bench_oracle.py --out runs/oracle --preset medium --clips 7000 --markdown oracle.md
    python benchmarks/bench_oracle.py --out runs/oracle_easy --preset easy --frames 8 --rules uniform

Renders ``--clips`` clips of ``--preset`` (render seed ``--seed``, 64 px; reused when the folder
already holds that set), builds one frame cache per keyframe rule and T (``tdrag prepare``; reused
when present) so that the keyframes are the ones a model of that recipe sees, and runs
``analysis.internals.oracle.oracle_table``: per task (the preset's shared-apex twins, or ``--pairs``, and all
classes together) the 5-fold accuracy of the best of three classifiers on the curves at the
keyframes in order, as an unordered bag, the apex face alone and every frame. Writes
``OUT/oracle.json`` (the long table) and, with ``--markdown``, the wide table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def ensure_data(out: Path, preset: str, clips: int, seed: int, size: int, workers: int) -> Path:
    """The synthetic set ``out/data`` (rendered unless it already holds this preset, size and seed)."""
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root, load_meta

    root = out / "data"
    meta = load_meta(root) if is_synthetic_root(root) else {}
    wanted = {"num_clips": clips, "preset": preset, "seed": seed, "size": size}
    if any(meta.get(k) != v for k, v in wanted.items()):
        generate_dataset(root, clips=clips, preset=preset, seed=seed, size=size, workers=workers, progress=True)
    return root


def ensure_caches(out: Path, root: Path, rules: list[str], frames: list[int], size: int, workers: int) -> dict:
    """(rule, T) -> opened frame cache ``out/cache_<rule>_t<T>`` (built when absent)."""
    from tdrag.data.cache import is_cache_folder, open_cache
    from tdrag.data.prepare import prepare_cache

    caches = {}
    for rule in rules:
        for t in frames:
            path = out / f"cache_{rule}_t{t}"
            if not is_cache_folder(path):
                prepare_cache(root, path, frames=t, size=size, keyframes=rule, workers=workers, progress=True)
            caches[(rule, t)] = open_cache(path)
    return caches


def parse_pairs(text: str | None) -> list[tuple[str, str]] | None:
    """``"Fear:Surprise,Disgust:Angry"`` -> ``[("Fear", "Surprise"), ("Disgust", "Angry")]``."""
    if not text:
        return None
    pairs = []
    for item in text.split(","):
        a, sep, b = item.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise SystemExit(f"error: --pairs: {item!r} is not CLASS:CLASS")
        pairs.append((a.strip(), b.strip()))
    return pairs


def main(argv=None) -> int:
    from analysis.internals.oracle import cache_keyframes, default_pairs, load_curves, oracle_markdown, oracle_table
    from tdrag.data.synthetic import get_preset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/oracle", help="folder for the data, the caches and oracle.json")
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--clips", type=int, default=2100)
    parser.add_argument("--seed", type=int, default=0, help="render seed")
    parser.add_argument("--size", type=int, default=64, help="rendered and cached frame side")
    parser.add_argument("--frames", default="8,16", help="keyframe counts T, comma-separated")
    parser.add_argument("--rules", default="redundancy,uniform", help="keyframe rules, comma-separated")
    parser.add_argument("--pairs", default=None, help="class pairs CLASS:CLASS,... (default: the preset's twins)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--markdown", default=None, help="write the wide table here")
    args = parser.parse_args(argv)

    out = Path(args.out)
    root = ensure_data(out, args.preset, args.clips, args.seed, args.size, args.workers)
    frames = [int(t) for t in args.frames.split(",")]
    caches = ensure_caches(out, root, args.rules.split(","), frames, args.size, args.workers)
    data = load_curves(root)
    pairs = parse_pairs(args.pairs) or default_pairs(data.class_names, get_preset(args.preset).shared_apex)
    keyframes = {key: cache_keyframes(cache, data.video_ids) for key, cache in caches.items()}
    table = oracle_table(data, keyframes, pairs, folds=args.folds, progress=True)
    record = {"preset": args.preset, "clips": args.clips, "seed": args.seed, "size": args.size,
              "rows": table.to_dict(orient="records")}
    (out / "oracle.json").write_text(json.dumps(record, indent=1))
    text = oracle_markdown(table)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
