"""analysis.report: reading (run_files), the numbers (results), the figures (figures) and the written
report (reports) of tiny run and cross-validation directories built here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analysis.report import figures, reports, results, run_files
from analysis.report.tables import to_latex, to_markdown
from tdrag import metrics
from tdrag.data.labels import DFEW_CLASSES
from tdrag.runs.epoch_log import write_log
from tdrag.runs.predictions import Predictions, PredictionsError
from tdrag.runs.report import write_report
from tdrag.train import crossval

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(run_dir, seed: int = 0, n: int = 40, epochs: int = 4, with_log: bool = True):
    """A run directory written by the engine's own writers (tdrag.runs): predictions.csv, log.csv,
    report/metrics.json, per_class_recall.csv|.md, confusion_matrix.csv."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    labels = np.arange(n) % 7
    preds = np.where(rng.random(n) < 0.6, labels, rng.integers(0, 7, n))
    preds_last = np.where(rng.random(n) < 0.4, labels, rng.integers(0, 7, n))

    def predictions(arg_max):
        probs = rng.dirichlet(np.ones(7), size=n) * 0.5
        probs[np.arange(n), arg_max] += 0.5
        return Predictions(rows=np.arange(n), video_ids=[f"{i + 1:05d}" for i in range(n)],
                           labels=labels, probabilities=probs.astype(np.float32))

    write_report(run_dir, DFEW_CLASSES, last=(epochs, predictions(preds_last)),
                 best=(epochs - 1, predictions(preds)), selection_split="test")
    if with_log:
        history = [
            {
                "epoch": e + 1,
                "train_loss": 2.0 - e / (epochs - 1),
                "train_acc": 0.2 + 0.4 * e / (epochs - 1),
                # The first epoch was not evaluated (eval_every > 1): blank cells.
                "test_war": None if e == 0 else 0.15 + 0.35 * e / (epochs - 1),
                "test_uar": None if e == 0 else 0.1 + 0.35 * e / (epochs - 1),
                "lr": 0.1 * 0.1 ** (e / (epochs - 1)),
                "epoch_seconds": 1.5,
                "clips_per_second": 30.0,
            }
            for e in range(epochs)
        ]
        write_log(run_dir / "log.csv", history, with_val=False)
    return labels, preds


def make_cv(cv_dir, folds: int = 2):
    """fold_<k>/ runs plus summary.json written by the engine's own summarize (tdrag.train.crossval)."""
    per_fold = {}
    for k in range(1, folds + 1):
        per_fold[str(k)] = make_run(cv_dir / f"fold_{k}", seed=k, n=28 + 7 * k)
    summary = crossval.summarize(cv_dir, list(range(1, folds + 1)))
    return per_fold, summary


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def test_load_predictions_and_class_names(tmp_path):
    labels, preds = make_run(tmp_path / "run")
    df = run_files.load_predictions(tmp_path / "run")
    assert df["label"].tolist() == labels.tolist()
    assert run_files.class_names_from_predictions(df) == list(DFEW_CLASSES)
    confusion = results.confusion_from_predictions(df, DFEW_CLASSES)
    np.testing.assert_array_equal(confusion, pd.crosstab(labels, preds).reindex(index=range(7), columns=range(7), fill_value=0))


def test_class_names_as_labels_are_accepted(tmp_path):
    make_run(tmp_path / "run")
    df = pd.read_csv(tmp_path / "run" / "predictions.csv")
    df["label"] = [DFEW_CLASSES[i] for i in df["label"]]
    df.to_csv(tmp_path / "run" / "predictions.csv", index=False)
    assert run_files.load_predictions(tmp_path / "run")["label"].tolist() == (np.arange(40) % 7).tolist()


def test_predictions_without_class_columns_have_no_class_names(tmp_path):
    """No DFEW fallback: without prob_<class> columns the indices are read and the names are unknown."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "predictions.csv").write_text("video_id,label,prediction\n00001,3,1\n00002,10,10\n")
    df = run_files.load_predictions(tmp_path / "run")
    assert df["label"].tolist() == [3, 10] and df["prediction"].tolist() == [1, 10]
    with pytest.raises(run_files.ReportError, match=r"run/predictions.csv: no prob_<class> columns: their class names"):
        run_files.class_names_from_predictions(df)
    with pytest.raises(run_files.ReportError, match="class names are unknown"):
        reports.write_report(tmp_path / "run")


def test_missing_and_bad_files_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(run_files.ReportError, match=r"no predictions.csv.*tdrag eval"):
        reports.write_report(tmp_path / "empty")
    with pytest.raises(run_files.ReportError, match="no such run directory"):
        reports.write_report(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / "predictions.csv"
    bad.write_text("video_id,label\n00001,3\n")
    with pytest.raises(PredictionsError, match=r"predictions.csv:1: not a tdrag predictions CSV \(no column prediction\)"):
        run_files.load_predictions(tmp_path / "bad")
    header = "video_id,label,prediction," + ",".join(f"prob_{c}" for c in DFEW_CLASSES)
    probs = ",".join(["0.1"] * 7)
    bad.write_text(f"{header}\n00001,3,1,{probs}\n00002,3,9,{probs}\n")
    with pytest.raises(PredictionsError, match=rf"{bad}:3 \(prediction\): label 9 is outside 0\.\.6"):
        run_files.load_predictions(tmp_path / "bad")
    bad.write_text(f"{header}\n00001,abc,1,{probs}\n")
    with pytest.raises(PredictionsError, match=rf"{bad}:2 \(label\): label 'abc' is not a class index"):
        run_files.load_predictions(tmp_path / "bad")
    bad.write_text(f"{header}\n00001,3,1,{probs}\n00002,3")
    with pytest.raises(PredictionsError, match=rf"{bad}:3: 2 cells where the header has 10"):
        run_files.load_predictions(tmp_path / "bad")
    with pytest.raises(run_files.ReportError, match="summary.json"):
        run_files.load_summary(tmp_path / "bad")


def test_per_class_recall_and_war_uar_match_tdrag_metrics():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 7, 200)
    preds = np.where(rng.random(200) < 0.5, labels, rng.integers(0, 7, 200))
    confusion = metrics.confusion_matrix(labels, preds, 7)
    figures = metrics.per_class(labels, preds, 7)
    for table in (results.per_class_table(labels, preds, DFEW_CLASSES),
                  results.per_class_from_confusion(confusion, DFEW_CLASSES)):
        for column in ("precision", "recall", "f1", "support"):
            np.testing.assert_allclose(table[column], figures[column])
        assert table.attrs["war"] == pytest.approx(metrics.war(labels, preds, 7))
        assert table.attrs["uar"] == pytest.approx(metrics.uar(labels, preds, 7))
    # A pooled confusion matrix is scored as the clips it counts.
    y, p = results.pairs_from_confusion(confusion)
    np.testing.assert_array_equal(metrics.confusion_matrix(y, p, 7), confusion)
    # A class without clips: recall n/a (NaN) in the table, left out of UAR.
    table = results.per_class_table([0, 0, 1], [0, 1, 1], ["a", "b", "c"])
    assert np.isnan(table.loc["c", "recall"]) and table.attrs["uar"] == pytest.approx(0.75)


def test_confusion_figure_shows_names_and_cells():
    confusion = np.array([[3, 1, 0], [0, 2, 2], [1, 0, 5]])
    fig = figures.plot_confusion_matrix(confusion, ["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    assert [t.get_text() for t in ax.texts] == [str(v) for v in confusion.ravel()]
    fig = figures.plot_confusion_matrix(confusion, ["a", "b", "c"], normalize=True)
    cells = [float(t.get_text()) for t in fig.axes[0].texts]
    np.testing.assert_allclose(np.reshape(cells, (3, 3)).sum(axis=1), 100.0, atol=0.2)
    assert "WAR 71.43" in fig.axes[0].get_title()  # (3 + 2 + 5) / 14


def test_training_curves_find_loss_accuracy_and_lr_columns(tmp_path):
    make_run(tmp_path / "run")
    fig = figures.plot_training_curves(run_files.load_log(tmp_path / "run"))
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy", "learning rate"]
    assert [line.get_label() for line in fig.axes[0].lines] == ["train_loss"]
    accuracy = fig.axes[1]
    assert {line.get_label() for line in accuracy.lines} == {"train_acc", "test_war", "test_uar"}
    war_line = next(line for line in accuracy.lines if line.get_label() == "test_war")
    assert len(war_line.get_xdata()) == 3  # the blank first epoch is skipped
    assert max(war_line.get_ydata()) == pytest.approx(50.0)  # fractions shown in percent
    with pytest.raises(ValueError, match="no loss/accuracy"):
        figures.plot_training_curves(pd.DataFrame({"epoch": [1, 2], "time": [3.0, 4.0]}))


def test_write_report_for_a_run(tmp_path):
    make_run(tmp_path / "run")
    written = reports.write_report(tmp_path / "run", dpi=40)
    names = sorted(p.name for p in written)
    assert names == ["confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_recall.png", "training_curves.png"]
    assert all(_is_png(p) and p.parent == tmp_path / "run" / "report" for p in written)
    # The engine's own report files are left alone; no temp files remain.
    assert (tmp_path / "run" / "report" / "metrics.json").is_file()
    assert not list((tmp_path / "run" / "report").glob(".*tmp"))


def test_write_report_without_log_skips_curves(tmp_path):
    make_run(tmp_path / "run", with_log=False)
    names = {p.name for p in reports.write_report(tmp_path / "run", dpi=40)}
    assert "training_curves.png" not in names and "per_class_recall.png" in names


def test_cv_summary_table_mean_std_and_pooled(tmp_path):
    per_fold, summary = make_cv(tmp_path / "cv", folds=3)
    table = results.cv_summary_table(tmp_path / "cv")
    assert list(table.index) == ["fold 1", "fold 2", "fold 3", "mean", "std", "pooled"]
    wars = [100 * metrics.war(y, p, 7) for y, p in per_fold.values()]
    np.testing.assert_allclose(table.loc[["fold 1", "fold 2", "fold 3"], "WAR"], wars)
    assert table.loc["mean", "WAR"] == pytest.approx(np.mean(wars))
    assert table.loc["std", "WAR"] == pytest.approx(np.std(wars, ddof=1))
    all_y = np.concatenate([y for y, _ in per_fold.values()])
    all_p = np.concatenate([p for _, p in per_fold.values()])
    assert table.loc["pooled", "UAR"] == pytest.approx(100 * metrics.uar(all_y, all_p, 7))
    happy = [100 * metrics.per_class(y, p, 7)["recall"][0] for y, p in per_fold.values()]
    np.testing.assert_allclose(table.loc[["fold 1", "fold 2", "fold 3"], "Happy"], happy)
    assert table.loc["pooled", "clips"] == len(all_y)
    # The last-epoch table reads the folds' report/predictions_last.csv.
    last = results.cv_summary_table(tmp_path / "cv", checkpoint="last")
    for k in (1, 2, 3):
        df = pd.read_csv(tmp_path / "cv" / f"fold_{k}" / "report" / "predictions_last.csv")
        assert last.loc[f"fold {k}", "WAR"] == pytest.approx(100 * (df.label == df.prediction).mean())
    assert not np.allclose(last.loc[["fold 1", "fold 2", "fold 3"], "WAR"], wars)

    formatted = results.format_summary_table(table)
    assert list(formatted.index) == ["fold 1", "fold 2", "fold 3", "mean ± std", "pooled"]
    assert formatted.loc["mean ± std", "WAR"] == f"{np.mean(wars):.2f} ± {np.std(wars, ddof=1):.2f}"
    md = to_markdown(formatted)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| fold") and "WAR" in lines[0] and lines[1].startswith("|:")
    assert len(lines) == 2 + 5 and all(line.count("|") == len(formatted.columns) + 2 for line in lines)
    tex = to_latex(formatted, caption="5-fold summary")
    assert r"\toprule" in tex and r"$\pm$" in tex and tex.count(r" \\") == 1 + 5


def test_write_report_for_a_cv_directory(tmp_path):
    make_cv(tmp_path / "cv")
    written = reports.write_report(tmp_path / "cv", dpi=40)
    report = tmp_path / "cv" / "report"
    for name in ("confusion_matrix.png", "confusion_matrix_normalized.png", "per_class_recall.png", "training_curves.png"):
        assert _is_png(report / name), name
        assert _is_png(tmp_path / "cv" / "fold_2" / "report" / name), name
    md = (report / "summary.md").read_text()
    md_rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")]
    # Two labelled tables: the selected (best, chosen on test: optimistic) and the last epochs.
    assert md_rows == ["fold", "fold 1", "fold 2", "mean ± std", "pooled"] * 2
    assert "## best epoch per fold, chosen on test (optimistic)" in md
    assert "## last epoch per fold (no choice made on the test fold)" in md
    assert (report / "summary.tex").read_text().count(r"\begin{tabular}") == 2
    for name in ("summary.csv", "summary_last.csv"):
        csv = pd.read_csv(report / name, index_col=0)
        assert list(csv.index)[-3:] == ["mean", "std", "pooled"]
    assert report / "summary.md" in written


def test_figures_name_the_selected_checkpoint(tmp_path):
    make_run(tmp_path / "run", epochs=4)
    assert run_files.selected_checkpoint_label(tmp_path / "run") == "best epoch by test WAR (optimistic), epoch 3"
    (tmp_path / "run" / "report" / "metrics.json").write_text("{not json")
    assert run_files.selected_checkpoint_label(tmp_path / "run") is None


def test_fold_curves_one_line_per_fold_in_percent(tmp_path):
    make_cv(tmp_path / "cv", folds=2)
    logs = {p.name: run_files.load_log(p) for p in run_files.fold_dirs(tmp_path / "cv")}
    fig = figures.plot_fold_curves(logs)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["train_loss", "train_acc", "test_war", "test_uar"]
    war = fig.axes[titles.index("test_war")]
    assert [line.get_label() for line in war.lines] == ["fold_1", "fold_2"]
    assert war.get_ylabel() == "%" and max(war.lines[0].get_ydata()) == pytest.approx(50.0)
