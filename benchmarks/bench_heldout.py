"""The ablation's trained models on a larger, independent test draw of the same synthetic preset.

    python benchmarks/bench_ablation.py --out runs/ablation --seeds 0,1,2,3,4     # train first
    python benchmarks/bench_heldout.py --ablation runs/ablation/results.json \\
        --out runs/heldout --markdown heldout.md

The ablation's test fold holds 120 clips: one clip is 0.8 points of WAR, and paired differences
between two variants scatter by about ten points over seeds, too much to tell a few points apart.
This script renders a second data set from the runs' own preset (their config's synth section:
`medium`, or `order` for ``runs/ablation_order``) with another render seed (every clip is drawn
from its own random stream, so the draw shares no clip with the training set), builds its caches
with the same keyframe rules, and evaluates every run of an ablation results file on all of its
clips: the checkpoint chosen on the validation split and the last one, with the GRU branch
switched off too for residual GRU heads, and each class's recall with the share of clips taken
for their shared-apex twin (on `medium`, Fear and Surprise, and Disgust and Angry, share their
apex face: only the timing tells them apart, which is the GRU's job). Nothing is trained or
chosen here; the runs' validation figures and training losses are carried over from the ablation
file. The table has the ablation's columns, with "test" meaning the held-out draw. The experiment
itself is ``analysis.experiments.heldout``; this file is its command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analysis.experiments.data import prepare_data  # noqa: E402
from analysis.experiments.heldout import heldout_recipe, score_heldout, select_runs  # noqa: E402
from analysis.experiments.results import HeldoutResult, RunResult, read_results, results_json  # noqa: E402
from analysis.experiments.summary import paired_summary, table_json  # noqa: E402
from analysis.experiments.tables import heldout_markdown  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
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
    return parser


def chosen_runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[RunResult]:
    """The runs of the ``--ablation`` files that ``--variants`` and ``--seeds`` keep (parser errors otherwise)."""
    runs = [r for path in args.ablation for r in read_results(path, RunResult)]
    variants = args.variants.split(",") if args.variants else None
    seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else None
    try:
        runs = select_runs(runs, variants, seeds)
    except ValueError as exc:
        parser.error(str(exc))
    if not runs:
        parser.error("no runs to evaluate")
    return runs


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    runs = chosen_runs(parser, args)
    base = heldout_recipe(runs)
    if args.render_seed == base.synth.render_seed:
        parser.error(f"--render-seed {args.render_seed} is the ablation set's own render seed; choose another")
    out = Path(args.out)
    paths = prepare_data(out, base, args.clips, args.workers, methods=(), seed=args.render_seed)
    results_path = out / f"results{'_' + args.name if args.name else ''}.json"
    results = []
    for r in score_heldout(runs, paths, base, args.render_seed, args.clips, results_path, args.workers):
        gru = f"; GRU off {r.last_gru_off_test_war:.3f}" if r.last_gru_off_test_war is not None else ""
        print(f"{r.variant} seed {r.seed}: held-out WAR {r.test_war:.3f} (selected), {r.last_test_war:.3f} (last){gru}",
              flush=True)
        results.append(r)
    table = paired_summary(results)
    from tdrag.atomic import write_json
    from tdrag.data.synthetic import load_meta

    text = heldout_markdown(results, table, load_meta(paths["root"])["classes"], args.clips, args.render_seed)
    print(text)
    scored = read_results(results_path, HeldoutResult)  # every run scored on this draw, this call's and before
    write_json(results_path, results_json(scored, table_json(table)))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
