"""The ablation's trained models on a larger, independent test draw of the same synthetic preset.

    python benchmarks/bench_ablation.py --out runs/ablation --seeds 0,1,2,3,4     # train first
    python benchmarks/bench_heldout.py --ablation runs/ablation/results.json \\
        --out runs/heldout --markdown heldout.md

The ablation's test fold holds 120 clips: one clip is 0.8 points of WAR, and paired differences
between two variants scatter by about ten points over seeds, too much to tell a few points apart.
This script renders a second data set from the same preset with another render seed (every clip
is drawn from its own random stream, so the draw shares no clip with the training set), builds
its caches with the same keyframe rules, and evaluates every run of an ablation results file on
all of its clips: the checkpoint chosen on the validation split and the last one, with the GRU
branch switched off too for residual GRU heads, and each class's recall with the share of clips
taken for their shared-apex twin (on `medium`, Fear and Surprise, and Disgust and Angry, share
their apex face: only the timing tells them apart, which is the GRU's job). Nothing is trained or
chosen here; the runs' validation figures and training losses are carried over from the ablation
file. The table has the ablation's columns, with "test" meaning the held-out draw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_ablation  # noqa: E402
from tdrag.atomic import write_json  # noqa: E402

#: Figures carried over from the ablation (measured on the runs' own validation split and training).
CARRIED = ("val_war", "last_val_war", "first_train_loss", "last_train_loss")


def heldout_result(run: dict, paths: dict, base, render_seed: int, workers: int) -> dict:
    """One ablation run's figures on the held-out draw (``paths``: its root and caches by method and T)."""
    from tdrag.config import load_config
    from tdrag.data.cache import open_cache
    from tdrag.runs.layout import RunPaths

    config = load_config(RunPaths(run["run_dir"]).config)
    if config.data.size != base.data.size:
        raise SystemExit(f"{run['run_dir']}: data.size {config.data.size}; the held-out caches hold {base.data.size} px")
    cache = open_cache(bench_ablation.ensure_cache(paths, config, base, workers))
    rows = np.arange(len(cache))
    out = {"variant": run["variant"], "seed": run["seed"], "run_dir": run["run_dir"], "clips": len(rows),
           "render_seed": render_seed}
    out.update({k: run[k] for k in CARRIED if run.get(k) is not None})
    for prefix, which in (("", "auto"), ("last_", "last")):
        figures = bench_ablation.checkpoint_figures(Path(run["run_dir"]), which, cache, rows)
        out[f"{prefix}test_war"], out[f"{prefix}test_uar"] = figures["war"], figures["uar"]
        out[f"{prefix}test_confusion"] = figures["confusion"]
        if "gru_off_war" in figures:
            out[f"{prefix}gru_off_test_war"] = figures["gru_off_war"]
            out[f"{prefix}gru_off_test_confusion"] = figures["gru_off_confusion"]
            if which == "last":
                out["last_gru_changed"] = figures["gru_changed"]
    return out


def seed_table(results: list[dict]) -> str:
    """Markdown: each run's held-out WAR (%), selected / last epoch, a column per seed (the paired
    differences of the summary table are differences of these columns)."""
    seeds = sorted({r["seed"] for r in results})
    by = {}
    for r in results:
        by.setdefault(r["variant"], {})[r["seed"]] = r
    lines = ["| variant | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---:|" * len(seeds)]
    for name, runs in by.items():
        cells = [f"{100 * runs[s]['test_war']:.1f} / {100 * runs[s]['last_test_war']:.1f}" if s in runs else "–"
                 for s in seeds]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def class_table(results: list[dict], class_names) -> str:
    """Markdown: per variant (last epoch; GRU heads also with the GRU branch switched off), each
    class's held-out recall and the share of the shared-apex classes' clips taken for their twin
    (Fear for Surprise and back, Disgust for Angry and back: the confusions only timing can
    resolve), in %, mean +- std over seeds."""
    from tdrag.data.synthetic.expressions import SHARED_APEX

    index = {name: k for k, name in enumerate(class_names)}
    pairs = [(index[a], index[b]) for a, b in SHARED_APEX.items() if a in index and b in index]
    rows: dict[str, list] = {}
    for r in results:
        rows.setdefault(r["variant"], []).append(r["last_test_confusion"])
        if "last_gru_off_test_confusion" in r:
            rows.setdefault(f"{r['variant']}, GRU off", []).append(r["last_gru_off_test_confusion"])
    lines = ["| variant, last epoch | " + " | ".join(class_names) + " | shared-apex clips taken for their twin |",
             "|---|" + "---:|" * (len(class_names) + 1)]
    for name, matrices in rows.items():
        counts = np.asarray(matrices, dtype=float)  # (seeds, C, C)
        recall = 100 * np.diagonal(counts, axis1=1, axis2=2) / np.maximum(counts.sum(2), 1)
        twin = [sum(c[a, b] + c[b, a] for a, b in pairs) / max(sum(c[a].sum() + c[b].sum() for a, b in pairs), 1)
                for c in counts]
        columns = np.column_stack([recall, 100 * np.asarray(twin)])
        std = columns.std(0, ddof=1) if len(columns) > 1 else np.zeros(columns.shape[1])
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {d:.1f}" for m, d in zip(columns.mean(0), std)) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ablation", action="append", required=True, metavar="RESULTS_JSON",
                        help="a results JSON of bench_ablation.py (repeatable)")
    parser.add_argument("--out", default="runs/heldout", help="folder for the held-out data, caches and results.json")
    parser.add_argument("--clips", type=int, default=2400, help="clips in the held-out draw (default 2400)")
    parser.add_argument("--render-seed", type=int, default=1,
                        help="render seed of the held-out draw (default 1; the ablation's set uses the config's, 0)")
    parser.add_argument("--variants", default=None, help="comma-separated subset of the ablation's variants")
    parser.add_argument("--seeds", default=None, help="comma-separated subset of the ablation's seeds")
    parser.add_argument("--name", default="", help="suffix of the results file (results_NAME.json), to keep several")
    parser.add_argument("--markdown", default=None, help="write the Markdown table here")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from tdrag.config import load_config

    base = load_config(bench_ablation.CONFIG)
    if args.render_seed == base.synth.render_seed:
        parser.error(f"--render-seed {args.render_seed} is the ablation set's own render seed; choose another")
    runs = [r for path in args.ablation for r in json.loads(Path(path).read_text())["results"]]
    if args.variants:
        keep = set(args.variants.split(","))
        runs = [r for r in runs if r["variant"] in keep]
    if args.seeds:
        keep = {int(v) for v in args.seeds.split(",")}
        runs = [r for r in runs if r["seed"] in keep]
    if not runs:
        parser.error("no runs to evaluate")
    out = Path(args.out)
    paths = bench_ablation.prepare_data(out, base, args.clips, args.workers, methods=(), seed=args.render_seed)
    tag = f"_{args.name}" if args.name else ""
    results_path = out / f"results{tag}.json"
    # Runs already scored on this draw are reused, so a killed call continues where it stopped (a run
    # trained again in the same folder needs another --name). Written atomically after each run.
    done = {(r["run_dir"], r["clips"], r.get("render_seed")): r for r in
            (json.loads(results_path.read_text())["results"] if results_path.is_file() else [])}
    results = []
    for run in runs:
        key = (run["run_dir"], args.clips, args.render_seed)
        results.append(done.get(key) or heldout_result(run, paths, base, args.render_seed, args.workers))
        done[key] = results[-1]
        write_json(results_path, {"results": list(done.values())})
        r = results[-1]
        print(f"{r['variant']} seed {r['seed']}: held-out WAR {r['test_war']:.3f} (selected), {r['last_test_war']:.3f} "
              f"(last)" + (f"; GRU off {r['last_gru_off_test_war']:.3f}" if "last_gru_off_test_war" in r else ""),
              flush=True)
    table = bench_ablation.summarise(results)
    from tdrag.data.synthetic import load_meta

    classes = load_meta(paths["root"])["classes"]
    text = (f"Test = a held-out draw of {args.clips} clips (render seed {args.render_seed}); validation and "
            "training figures from the ablation.\n\n" + bench_ablation.markdown(table)
            + "\nHeld-out WAR per run (%), selected / last epoch:\n\n" + seed_table(results)
            + "\nHeld-out recall per class (%):\n\n" + class_table(results, classes))
    print(text)
    write_json(results_path, {"results": list(done.values()), "table": table})
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
