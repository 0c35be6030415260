"""analysis.experiments.results: typed runs, their JSON entries, files written before the classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.experiments.results import (HeldoutResult, ResultsError, RunResult, StageAgreement, read_results,
                                          result_from_json, results_json)

#: A results file bench_ablation.py wrote before these classes existed (runs/ablation_order, 2026-12:
#: r3d18, tdrag and tdrag_no_gru on the `order` preset, seeds 0-2), with the table it wrote.
OLD_ABLATION = Path(__file__).parent / "data" / "ablation_order_results.json"


def run(**changes) -> RunResult:
    values = dict(variant="tdrag", seed=0, run_dir="runs/x/tdrag/seed_0", test_war=0.8, test_uar=0.75,
                  last_test_war=0.7, last_test_uar=0.65, selected_epoch=3, selection="val")
    return RunResult(**{**values, **changes})


def test_an_old_results_file_reads_with_every_figure():
    results = read_results(OLD_ABLATION, RunResult)
    raw = json.loads(OLD_ABLATION.read_text())["results"]
    assert len(results) == len(raw) == 9
    for r, entry in zip(results, raw):
        # Every key of the old entry is a field, read back unchanged; the entry written again is the same.
        assert {k: getattr(r, k) for k in entry} == entry
        assert r.to_json() == entry
    assert {r.variant for r in results} == {"r3d18", "tdrag", "tdrag_no_gru"}
    assert all(r.gru_off_test_war is None for r in results if r.variant == "r3d18")


def test_absent_figures_are_left_out_and_read_back_as_none():
    entry = run(val_war=None, attention={"layer3": StageAgreement(0.3, 0.7, 0.6, 0.5, 0.1)}).to_json()
    assert "val_war" not in entry and "gru_off_test_war" not in entry
    assert entry["attention"]["layer3"] == {"mass": 0.3, "auroc": 0.7, "auroc_face": 0.6, "pointing_game": 0.5,
                                            "chance": 0.1, "ratio": pytest.approx(3.0)}
    back = result_from_json(entry, RunResult)
    assert back == run(attention={"layer3": StageAgreement(0.3, 0.7, 0.6, 0.5, 0.1)})
    assert back.val_war is None and back.attention["layer3"].ratio == pytest.approx(3.0)


def test_heldout_results_round_trip_with_their_confusions(tmp_path):
    r = HeldoutResult(variant="tdrag", seed=1, run_dir="d", clips=4, render_seed=1, test_war=0.5, test_uar=0.5,
                      last_test_war=0.25, last_test_uar=0.25, test_confusion=[[1, 1], [1, 1]],
                      last_test_confusion=[[1, 1], [2, 0]], last_gru_changed=0.25)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results_json([r], {"tdrag": {"seeds": [1]}})))
    assert read_results(path, HeldoutResult) == [r]
    assert r.key == ("d", 4, 1) and json.loads(path.read_text())["table"] == {"tdrag": {"seeds": [1]}}


def test_bad_files_and_entries_say_where(tmp_path):
    path = tmp_path / "results.json"
    with pytest.raises(ResultsError, match="no such results file"):
        read_results(path, RunResult)
    path.write_text("{")
    with pytest.raises(ResultsError, match="results.json: not JSON"):
        read_results(path, RunResult)
    path.write_text(json.dumps({"results": [{**run().to_json(), "test_wra": 0.1}]}))
    with pytest.raises(ResultsError, match=r"entry 0: unknown key\(s\) \['test_wra'\]"):
        read_results(path, RunResult)
    entry = run().to_json()
    del entry["test_war"]
    with pytest.raises(ResultsError, match="lacks test_war"):
        result_from_json(entry, RunResult)
    with pytest.raises(ResultsError, match=r"\['seconds', 'selected_epoch', 'selection'\] for a HeldoutResult"):
        result_from_json(run().to_json(), HeldoutResult)  # an ablation entry is not a held-out one
