"""The Markdown tables of the ablation and the held-out draw (their columns are RESULTS.md's).

- :func:`ablation_markdown`: per variant, test WAR/UAR (selected and last epoch) mean ± std, the
  paired differences against the two references, validation WAR, GRU-off WAR and the share of
  predictions the GRU changes; the training losses; attention agreement per stage when scored;
- :func:`seed_table`: each run's WAR, a column per seed (what the paired differences difference);
- :func:`class_table`: each class's recall and the shared-apex confusions, GRU on and off.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analysis.experiments.results import HeldoutResult, RunFigures
from analysis.experiments.summary import REFERENCES, MeanStd, VariantSummary


def _pm(value) -> str:
    """A fraction's mean ± std in %, "–" when absent."""
    return "–" if value is None else f"{100 * value.mean:.1f} ± {100 * value.std:.1f}"


def _main_rows(table: dict[str, VariantSummary], reference: str, full: str) -> list[str]:
    lines = [f"| variant | seeds | test WAR (%) selected | last epoch | test UAR (%) selected | last epoch | "
             f"WAR − {reference} selected | last epoch | WAR − {full} selected | last epoch | val WAR (%) last epoch | "
             "GRU off: test WAR (%) selected | last epoch | test predictions the GRU changes (%), last epoch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in table.items():
        cells = [row.figure("test_war"), row.figure("last_test_war"), row.figure("test_uar"),
                 row.figure("last_test_uar"), row.difference("test_war", reference),
                 row.difference("last_test_war", reference), row.difference("test_war", full),
                 row.difference("last_test_war", full), row.figure("last_val_war"), row.figure("gru_off_test_war"),
                 row.figure("last_gru_off_test_war"), row.figure("last_gru_changed")]
        lines.append(f"| {name} | {len(row.seeds)} | " + " | ".join(_pm(c) for c in cells) + " |")
    return lines


def _loss_rows(table: dict[str, VariantSummary]) -> list[str]:
    lines = ["", "| variant | training loss, first epoch | last epoch |", "|---|---:|---:|"]
    for name, row in table.items():
        first, last = row.figure("first_train_loss"), row.figure("last_train_loss")
        if first is not None and last is not None:
            lines.append(f"| {name} | {first.mean:.2f} ± {first.std:.2f} | {last.mean:.2f} ± {last.std:.2f} |")
    return lines


def _attention_rows(table: dict[str, VariantSummary]) -> list[str]:
    scored = [(name, row.attention) for name, row in table.items() if row.attention]
    if not scored:
        return []
    lines = ["", "| variant | stage | AUROC | AUROC within the face | mass in mask / chance | pointing game |",
             "|---|---|---:|---:|---:|---:|"]
    for name, stages in scored:
        for stage, v in stages.items():
            cells = " | ".join(f"{v[k].mean:.2f} ± {v[k].std:.2f}" for k in ("auroc", "auroc_face", "ratio",
                                                                             "pointing_game"))
            lines.append(f"| {name} | {stage} | {cells} |")
    return lines


def ablation_markdown(table: dict[str, VariantSummary], reference: str = REFERENCES[0],
                      full: str = REFERENCES[1]) -> str:
    """The ablation table (``paired_summary``'s rows), the training losses and, when scored, the
    attention agreement per stage."""
    lines = _main_rows(table, reference, full) + _loss_rows(table) + _attention_rows(table)
    return "\n".join(lines) + "\n"


def _by_variant(results: Sequence[RunFigures]) -> dict[str, dict[int, RunFigures]]:
    by: dict[str, dict[int, RunFigures]] = {}
    for r in results:
        by.setdefault(r.variant, {})[r.seed] = r
    return by


def seed_table(results: Sequence[RunFigures]) -> str:
    """Each run's WAR (%), selected / last epoch, a column per seed (the paired differences of the
    summary table are differences of these columns)."""
    seeds = sorted({r.seed for r in results})
    lines = ["| variant | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---:|" * len(seeds)]
    for name, runs in _by_variant(results).items():
        cells = [f"{100 * runs[s].test_war:.1f} / {100 * runs[s].last_test_war:.1f}" if s in runs else "–"
                 for s in seeds]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def twin_share(counts: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    """Share of the shared-apex classes' clips taken for their twin, from ``(C, C)`` counts (true
    class by row): the confusions only timing can resolve."""
    taken = sum(counts[a, b] + counts[b, a] for a, b in pairs)
    return float(taken / max(sum(counts[a].sum() + counts[b].sum() for a, b in pairs), 1))


def class_table(results: Sequence[HeldoutResult], class_names: Sequence[str]) -> str:
    """Per variant (last epoch; GRU heads also with the GRU branch switched off), each class's
    recall and the share of the shared-apex classes' clips taken for their twin (Fear for Surprise
    and back, Disgust for Angry and back), in %, mean ± std over seeds."""
    from tdrag.data.synthetic.expressions import SHARED_APEX

    index = {name: k for k, name in enumerate(class_names)}
    pairs = [(index[a], index[b]) for a, b in SHARED_APEX.items() if a in index and b in index]
    rows: dict[str, list] = {}
    for r in results:
        rows.setdefault(r.variant, []).append(r.last_test_confusion)
        if r.last_gru_off_test_confusion is not None:
            rows.setdefault(f"{r.variant}, GRU off", []).append(r.last_gru_off_test_confusion)
    lines = ["| variant, last epoch | " + " | ".join(class_names) + " | shared-apex clips taken for their twin |",
             "|---|" + "---:|" * (len(class_names) + 1)]
    for name, matrices in rows.items():
        counts = np.asarray(matrices, dtype=float)  # (seeds, C, C)
        recall = 100 * np.diagonal(counts, axis1=1, axis2=2) / np.maximum(counts.sum(2), 1)
        columns = np.column_stack([recall, [100 * twin_share(c, pairs) for c in counts]])  # (seeds, C + 1)
        cells = [MeanStd.of(column) for column in columns.T]
        lines.append(f"| {name} | " + " | ".join(f"{c.mean:.1f} ± {c.std:.1f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def heldout_markdown(results: Sequence[HeldoutResult], table: dict[str, VariantSummary], class_names: Sequence[str],
                     clips: int, render_seed: int) -> str:
    """The held-out report: the ablation's table with "test" meaning the draw, each run's WAR per
    seed, and each class's recall."""
    return (f"Test = a held-out draw of {clips} clips (render seed {render_seed}); validation and "
            "training figures from the ablation.\n\n" + ablation_markdown(table)
            + "\nHeld-out WAR per run (%), selected / last epoch:\n\n" + seed_table(results)
            + "\nHeld-out recall per class (%):\n\n" + class_table(results, class_names))
