"""analysis.experiments.tables: the Markdown tables' cells, worked out by hand."""

from __future__ import annotations

import numpy as np

from analysis.experiments.results import HeldoutResult, StageAgreement
from analysis.experiments.summary import paired_summary
from analysis.experiments.tables import ablation_markdown, class_table, seed_table, twin_share
from tests.analysis.experiments.test_results import run

NAMES = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_the_ablation_table_by_hand():
    results = [run(variant="r3d18", seed=0, test_war=0.50, last_test_war=0.40),
               run(variant="r3d18", seed=1, test_war=0.70, last_test_war=0.60),
               run(variant="tdrag", seed=0, test_war=0.60, last_test_war=0.40, gru_off_test_war=0.55,
                   last_gru_off_test_war=0.35, last_gru_changed=0.1, first_train_loss=2.0, last_train_loss=1.0,
                   attention={"layer3": StageAgreement(0.2, 0.6, 0.5, 0.25, 0.1)}),
               run(variant="tdrag", seed=1, test_war=0.90, last_test_war=0.80, gru_off_test_war=0.85,
                   last_gru_off_test_war=0.75, last_gru_changed=0.3, first_train_loss=2.2, last_train_loss=1.2,
                   attention={"layer3": StageAgreement(0.4, 0.8, 0.7, 0.75, 0.1)})]
    lines = ablation_markdown(paired_summary(results)).splitlines()
    header = cells(lines[0])
    assert header[:3] == ["variant", "seeds", "test WAR (%) selected"] and "WAR − r3d18 selected" in header
    tdrag = dict(zip(header, cells(lines[3])))
    assert tdrag["seeds"] == "2" and tdrag["test WAR (%) selected"] == "75.0 ± 21.2"
    # Per seed 0.10 and 0.20 -> 15.0 ± 7.1 points; r3d18 against itself is no cell.
    assert tdrag["WAR − r3d18 selected"] == "15.0 ± 7.1" and cells(lines[2])[6] == "–"
    assert tdrag["test predictions the GRU changes (%), last epoch"] == "20.0 ± 14.1"
    assert "| tdrag | 2.10 ± 0.14 | 1.10 ± 0.14 |" in lines  # the training losses; r3d18 has none
    assert not any(line.startswith("| r3d18 | 1.") for line in lines)
    # Attention: AUROC, in the face, mass / chance (2 and 4 -> 3.00 ± 1.41), pointing game.
    assert lines[-1] == "| tdrag | layer3 | 0.70 ± 0.14 | 0.60 ± 0.14 | 3.00 ± 1.41 | 0.50 ± 0.35 |"


def test_seed_table_has_a_column_per_seed():
    results = [run(seed=0, test_war=0.5, last_test_war=0.25), run(variant="r3d18", seed=2, test_war=1.0,
                                                                   last_test_war=0.75)]
    lines = seed_table(results).splitlines()
    assert cells(lines[0]) == ["variant", "seed 0", "seed 2"]
    assert cells(lines[2]) == ["tdrag", "50.0 / 25.0", "–"] and cells(lines[3]) == ["r3d18", "–", "100.0 / 75.0"]


def heldout(confusion, off=None, seed=0) -> HeldoutResult:
    return HeldoutResult(variant="m", seed=seed, run_dir="d", clips=70, test_war=0, test_uar=0, last_test_war=0,
                         last_test_uar=0, test_confusion=confusion, last_test_confusion=confusion,
                         last_gru_off_test_confusion=off)


def test_class_table_by_hand():
    counts = np.eye(7, dtype=int) * 10
    counts[6, 6], counts[6, 4] = 5, 5  # half of Fear taken for Surprise, its shared-apex twin
    counts[1, 1], counts[1, 0] = 8, 2  # Sad taken for Happy: not a timing confusion
    lines = class_table([heldout(counts.tolist())], NAMES).splitlines()
    # Recall per class, then 5 of the 40 clips of Angry, Surprise, Disgust and Fear.
    assert cells(lines[2]) == ["m", *(f"{v:.1f} ± 0.0" for v in (100, 80, 100, 100, 100, 100, 50, 12.5))]
    assert twin_share(counts, [(6, 4), (5, 3)]) == 5 / 40


def test_class_table_over_seeds_with_the_gru_off():
    on, off = np.eye(7, dtype=int) * 10, np.eye(7, dtype=int) * 10
    off[4, 4], off[4, 6] = 0, 10  # GRU off: every Surprise taken for Fear
    lines = class_table([heldout(on.tolist(), off.tolist(), 0), heldout(on.tolist(), on.tolist(), 1)],
                        NAMES).splitlines()
    assert cells(lines[2])[0] == "m" and cells(lines[3])[0] == "m, GRU off"
    # Surprise's recall with the GRU off: 0 and 100 over two seeds; the twin share 10 / 40 and 0.
    assert cells(lines[3])[5] == "50.0 ± 70.7" and cells(lines[3])[8] == "12.5 ± 17.7"
