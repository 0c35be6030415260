"""Pooling order tests and temporal agreement over runs: hand-computed means and stds, and the
dossier's Time section and notebook views on a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.report.time_checks import TimeCheck, agreement_markdown, agreement_table, order_markdown, order_table


def check(variant, seed, wars, pair_recall, auroc, prior):
    order = pd.DataFrame({"condition": ["chosen", "reversed"], "gru": ["on", "on"], "war": wars, "uar": wars,
                          "clips": [10, 10]})
    per_class = pd.DataFrame({"class": ["Fear", "Surprise", "Happy"] * 2,
                              "condition": ["chosen"] * 3 + ["reversed"] * 3, "gru": ["on"] * 6,
                              "recall": [*pair_recall[0], 1.0, *pair_recall[1], 1.0], "clips": [3, 3, 4] * 2})
    agreement = pd.DataFrame({"class": ["all"], "view": ["frame ablation"], "auroc": [auroc], "prior_auroc": [prior],
                              "clips": [7]})
    return TimeCheck(variant, seed, order, per_class, agreement)


def test_order_table_by_hand():
    records = [check("tdrag", 0, [0.8, 0.6], [(0.5, 1.0), (0.0, 0.5)], 0.7, 0.6),
               check("tdrag", 1, [0.6, 0.5], [(1.0, 1.0), (0.5, 0.5)], 0.9, 0.6)]
    table = order_table(records, pairs=[("Fear", "Surprise")])
    chosen = table[table.condition == "chosen"].iloc[0]
    reversed_ = table[table.condition == "reversed"].iloc[0]
    assert chosen.war == pytest.approx(70.0) and chosen.war_std == pytest.approx(np.std([80, 60], ddof=1))
    assert reversed_.war_change == pytest.approx(np.mean([-20, -10]))
    assert reversed_.war_change_std == pytest.approx(np.std([-20, -10], ddof=1))
    assert chosen["Fear/Surprise recall"] == pytest.approx(np.mean([75.0, 100.0]))
    assert reversed_["Fear/Surprise recall"] == pytest.approx(np.mean([25.0, 50.0]))
    assert "| tdrag | reversed | on | 2 | 55.0 ± 7.1 | -15.0 ± 7.1 | 37.5 ± 17.7 |" in order_markdown(table)
    agree = agreement_table(records).iloc[0]
    assert agree.auroc == pytest.approx(0.8) and agree.prior_auroc == pytest.approx(0.6) and agree.seeds == 2
    assert "| tdrag | frame ablation | 2 | 0.800 ± 0.141 | 0.600 ± 0.000 | 7 |" in agreement_markdown(agreement_table(records))


def test_time_section_and_views_on_a_run(tiny_run, tmp_path):
    from analysis import open_run
    from analysis.attribution.time_views import order_test_view, temporal_agreement_view
    from analysis.report.time_section import AGREEMENT_CSV, ORDER_CSV, measure_time, time_section_html, write_time_csvs

    run = open_run(tiny_run, progress=False)
    checks = measure_time(run, small=True)
    assert sorted(write_time_csvs(tmp_path, checks)) == sorted([ORDER_CSV, AGREEMENT_CSV])
    order = pd.read_csv(tmp_path / ORDER_CSV)
    assert list(order.columns) == ["class", "condition", "gru", "recall", "clips"]
    agreement = pd.read_csv(tmp_path / AGREEMENT_CSV)
    assert list(agreement.columns) == ["class", "view", "auroc", "prior_auroc", "clips"]
    page = time_section_html(checks)
    assert 'id="time"' in page and 'id="temporal-agreement"' in page and page.count("data:image/png") == 2
    assert len(order_test_view(run)) == 4
    assert len(temporal_agreement_view(run, checks.agreement)) == 3
