"""Time, checked, over trained runs: order tests and temporal agreement per variant and seed.

    python benchmarks/bench_time.py --runs runs/ablation/runs --out runs/time --markdown time.md
    python benchmarks/bench_time.py --runs runs/ablation/runs --variants tdrag --seeds 0 --out runs/time_probe

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


def load_or_check(out: Path, run_dir: Path, variant: str, seed: int, truth: Path):
    """One run's TimeCheck, from ``out/checks`` when measured before."""
    import pandas as pd

    from analysis.report.time_checks import TimeCheck, check_run
    from tdrag.atomic import write_json

    saved = out / "checks" / f"{variant}_seed{seed}.json"
    if saved.is_file():
        data = json.loads(saved.read_text())
        return TimeCheck(variant, seed, *(pd.DataFrame(data[k]) for k in ("order", "order_per_class", "agreement")))
    check = check_run(run_dir, variant, seed, truth)
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
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    out, runs = Path(args.out), Path(args.runs)
    todo = [(v, int(s), runs / v / f"seed_{s}") for v in args.variants.split(",") for s in args.seeds.split(",")]
    todo = [t for t in todo if (t[2] / "checkpoints").is_dir()]
    if not todo:
        raise SystemExit(f"error: {runs}: no trained runs of {args.variants} seeds {args.seeds}")
    config = load_model(todo[0][2])[1]  # the runs' data root, found by the checkpoint's path rule
    truth = truth_root(out, Path(config.data.root), args.truth)
    meta = load_meta(truth)
    pairs = default_pairs(meta["classes"], bool(meta.get("preset_settings", {}).get("shared_apex", False)))
    records = []
    for variant, seed, run_dir in todo:
        records.append(load_or_check(out, run_dir, variant, seed, truth))
        print(f"{variant} seed {seed}: done", flush=True)
    text = ("### Order tests (test fold; WAR and change from the chosen order, points)\n\n"
            + order_markdown(order_table(records, pairs))
            + "\n\n### Temporal agreement (all scored clips of the test fold)\n\n"
            + agreement_markdown(agreement_table(records)))
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
