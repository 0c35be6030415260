"""Time, checked, over trained runs: order tests and temporal agreement per variant and seed.

    python benchmarks/bench_time.py --runs runs/ablation/runs --out runs/time --markdown time.md
    python benchmarks/bench_time.py --runs runs/ablation/runs --variants tdrag --seeds 0 --out runs/time_probe
    python benchmarks/bench_time.py --runs runs/ablation/runs --heldout runs/heldout --max-clips 60 \
        --views "frame ablation" --out runs/time_heldout

For every run ``RUNS/<variant>/seed_<k>`` (the layout of ``bench_ablation.py``) it opens the
checkpoint chosen on the validation split (``select_checkpoint``), scores its test fold on the
keyframes as chosen, shuffled (3 fixed orders), reversed and static, GRU on and off
(``analysis.internals.order_tests``), and scores every temporal view against the renderer's
evidence keyframes beside the prior (``analysis.attribution.temporal``). A synthetic set rendered
before the temporal ground truth existed has none; ``--truth`` names a set that has it, and by
default the script renders the runs' set again into ``OUT/truth`` (same preset, seed, size and
clip count: the same frames, checked against the runs' meta.json). Each run's result is kept in
``OUT/checks/``, so a killed call continues; the tables (mean ± std over seeds) are printed and,
with ``--markdown``, written.

``--heldout DIR`` scores every run on the held-out draw of ``benchmarks/bench_heldout.py`` instead
(``DIR/data`` and its caches ``DIR/cache_<rule>``, the rule of each run's config; all clips, or
``--max-clips`` per class), ``--views`` names the temporal views to score (comma-separated;
default all: Integrated Gradients over thousands of clips takes hours on a CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def truth_root(out: Path, data_root: Path, given: str | None) -> Path:
    """A synthetic set with temporal ground truth holding the runs' clips (see the module docstring)."""
    from analysis.attribution.temporal import has_temporal_truth
    from tdrag.data.synthetic import generate_dataset, is_synthetic_root, load_meta

    if given:
        root = Path(given)
    elif has_temporal_truth(data_root):
        return data_root
    else:
        root = out / "truth"
        meta = load_meta(data_root)
        if not is_synthetic_root(root):
            generate_dataset(root, clips=meta["num_clips"], preset=meta["preset"], seed=meta["seed"],
                             size=meta["size"], workers=2, progress=True, layout=meta.get("layout", "dfew"))
    if load_meta(root)["clips"] != load_meta(data_root)["clips"]:
        raise SystemExit(f"error: {root}: its clips differ from the runs' data set {data_root}")
    return root


def load_or_check(out: Path, run_dir: Path, variant: str, seed: int, truth: Path, heldout: Path | None = None,
                  views: list[str] | None = None, max_clips: int | None = None):
    """One run's TimeCheck, from ``out/checks`` when measured before (on the held-out draw's
    cache of the run's keyframe rule when ``heldout`` is given)."""
    import pandas as pd

    from analysis.report.time_checks import TimeCheck, check_run
    from tdrag.atomic import write_json

    saved = out / "checks" / f"{variant}_seed{seed}.json"
    if saved.is_file():
        data = json.loads(saved.read_text())
        return TimeCheck(variant, seed, *(pd.DataFrame(data[k]) for k in ("order", "order_per_class", "agreement")))
    if heldout is None:
        check = check_run(run_dir, variant, seed, truth, views=views, max_clips=max_clips)
    else:
        from tdrag.runs.checkpoints import checkpoint_config, load_checkpoint, select_checkpoint

        path = select_checkpoint(run_dir).path
        rule = checkpoint_config(load_checkpoint(path, map_location="cpu"), path).data.keyframes
        check = check_run(run_dir, variant, seed, truth, split="all", cache=heldout / f"cache_{rule}", views=views,
                          max_clips=max_clips)
    saved.parent.mkdir(parents=True, exist_ok=True)
    parts = ("order", "order_per_class", "agreement")
    write_json(saved, {k: getattr(check, k).to_dict(orient="records") for k in parts})
    return check


def main(argv=None) -> int:
    import torch

    from analysis.internals.oracle import default_pairs
    from analysis.report.time_checks import agreement_markdown, agreement_table, order_markdown, order_table
    from tdrag.data.synthetic import load_meta
    from tdrag.models.registry import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/ablation/runs", help="folder of <variant>/seed_<k> run directories")
    parser.add_argument("--variants", default="r3d18,tdrag,tdrag_no_gru,tdrag_trunk")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--out", default="runs/time")
    parser.add_argument("--truth", default=None, help="a synthetic set with temporal ground truth holding the clips")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--heldout", default=None, help="a bench_heldout.py output folder: score the runs on its draw")
    parser.add_argument("--views", default=None, help="temporal views to score, comma-separated (default: all)")
    parser.add_argument("--max-clips", type=int, default=None, help="at most this many clips per class")
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    out, runs = Path(args.out), Path(args.runs)
    todo = [(v, int(s), runs / v / f"seed_{s}") for v in args.variants.split(",") for s in args.seeds.split(",")]
    todo = [t for t in todo if (t[2] / "checkpoints").is_dir()]
    if not todo:
        raise SystemExit(f"error: {runs}: no trained runs of {args.variants} seeds {args.seeds}")
    heldout = Path(args.heldout) if args.heldout else None
    views = args.views.split(",") if args.views else None
    if heldout is not None:
        truth = heldout / "data"
    else:
        config = load_model(todo[0][2])[1]  # the runs' data root, found by the checkpoint's path rule
        truth = truth_root(out, Path(config.data.root), args.truth)
    meta = load_meta(truth)
    pairs = default_pairs(meta["classes"], bool(meta.get("preset_settings", {}).get("shared_apex", False)))
    records = []
    for variant, seed, run_dir in todo:
        records.append(load_or_check(out, run_dir, variant, seed, truth, heldout, views, args.max_clips))
        print(f"{variant} seed {seed}: done", flush=True)
    where = "the held-out draw" if heldout is not None else "the test fold"
    text = (f"### Order tests ({where}; WAR and change from the chosen order, points)\n\n"
            + order_markdown(order_table(records, pairs))
            + f"\n\n### Temporal agreement (all scored clips of {where})\n\n"
            + agreement_markdown(agreement_table(records)))
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
