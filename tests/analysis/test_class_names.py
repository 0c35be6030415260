"""An 11-class run in MAFW's layout shows MAFW's class names everywhere, and no code path can fall
back on DFEW's: every view below is made with ``tdrag.data.labels.DFEW_CLASSES`` (and every loaded
module's reference to it, the DFEW reader's class list included) replaced by names no dataset has.

Covered: the report of the run directory, the dossier's index and class-page helpers, the region
profile (and its CSV), the explorer's labels and figures, the attention, trajectory and
attribution views the notebooks show.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys

import matplotlib.text
import pandas as pd
import pytest
from matplotlib.figure import Figure

import analysis
from tdrag.data import labels as tdrag_labels
from tdrag.data.labels import DFEW_CLASSES, MAFW_CLASSES

#: What DFEW_CLASSES becomes during the test: a path that still read it would show these.
ABSURD = tuple(f"NotAClass{i}" for i in range(len(DFEW_CLASSES)))
#: Any DFEW name (MAFW's are lower case and different words) or an absurd one, as a whole word.
FORBIDDEN = re.compile(r"\b(" + "|".join([*DFEW_CLASSES, "NotAClass\\d"]) + r")\b")


@pytest.fixture
def no_dfew(monkeypatch):
    """Every loaded reference to DFEW_CLASSES (all analysis modules imported first) made absurd."""
    for info in pkgutil.walk_packages(analysis.__path__, "analysis."):
        if info.name not in ("analysis.__main__",):
            importlib.import_module(info.name)
    original = tdrag_labels.DFEW_CLASSES
    patched = []
    for name, module in list(sys.modules.items()):
        if getattr(module, "DFEW_CLASSES", None) is original:
            monkeypatch.setattr(module, "DFEW_CLASSES", ABSURD)
            patched.append(name)
    from tdrag.data.datasets import get_reader

    monkeypatch.setattr(get_reader("dfew"), "CLASSES", ABSURD)
    assert "tdrag.data.labels" in patched
    assert not [n for n in patched if n.startswith("analysis")], "analysis modules should not hold DFEW_CLASSES"
    return patched


def shown_text(*items) -> str:
    """Every piece of text an item shows: a figure's (titles, ticks, legends), a table's (index,
    columns, cells), a list's items, HTML without its embedded images."""
    out = []
    for item in items:
        if isinstance(item, (list, tuple)):
            out.append(shown_text(*item))
        elif isinstance(item, Figure):
            item.draw_without_rendering()
            out.extend(t.get_text() for t in item.findobj(matplotlib.text.Text))
        elif isinstance(item, pd.DataFrame):
            out.append(item.to_string())
        else:
            out.append(re.sub(r"data:[a-z/]+;base64,[A-Za-z0-9+/=]+", "", str(item)))
    return "\n".join(out)


def assert_mafw(text: str, names=MAFW_CLASSES) -> None:
    """``text`` names each of ``names`` and no DFEW (or absurd) class."""
    assert not FORBIDDEN.findall(text), FORBIDDEN.findall(text)[:5]
    missing = [n for n in names if n not in text]
    assert not missing, f"not shown: {missing}"


@pytest.fixture(scope="module")
def mafw(tiny_mafw_run):
    from analysis.internals.run import open_run

    return tiny_mafw_run, open_run(tiny_mafw_run, device="cpu", progress=False)


def test_the_run_knows_mafws_classes(mafw):
    run_dir, run = mafw
    assert run.class_names == MAFW_CLASSES and run.num_classes == 11
    assert sorted(set(run.labels.tolist())) == list(range(11))  # every class has test clips


def test_the_report(mafw, no_dfew):
    from analysis.report import figures, reports, results, run_files

    run_dir, _ = mafw
    written = reports.write_report(run_dir)
    assert {p.name for p in written} >= {"confusion_matrix.png", "per_class_recall.png", "training_curves.png"}
    preds = run_files.load_predictions(run_dir)
    names = run_files.class_names_from_predictions(preds)
    assert names == list(MAFW_CLASSES)
    confusion = results.confusion_from_predictions(preds, names)
    assert_mafw(shown_text(figures.plot_confusion_matrix(confusion, names, normalize=True),
                           figures.plot_per_class_recall(results.per_class_table(preds["label"], preds["prediction"],
                                                                                 names))))


def test_the_dossiers_index_and_class_page_helpers(mafw, no_dfew):
    from analysis.report import class_page
    from analysis.report.index_page import index_html
    from analysis.report.region_profile import region_profile, score_maps

    _, run = mafw
    summary = class_page.class_summary(run)
    assert list(summary.index) == list(MAFW_CLASSES)
    scores = score_maps(run, range(len(run)))
    pages = {name: f"{name}.html" for name in MAFW_CLASSES}
    page = index_html(run, summary, pages, {}, scores, region_profile(scores), "region_profile.csv")
    assert_mafw(page)
    for name in MAFW_CLASSES:
        assert f'<a href="{name}.html">{name}</a>' in page
    label = "contempt"
    one = class_page.class_scores(run, label, "gradcam", small=True)
    assert one.class_names == MAFW_CLASSES
    assert_mafw(shown_text(class_page.confusion_row(run, label), class_page.class_metrics(run, label)))
    assert_mafw(shown_text(class_page.plot_class_trajectories(run, label),
                           class_page.plot_class_attention(run, label),
                           class_page.plot_class_frame_importance(run, label, count=2),
                           class_page.ground_truth_agreement(one),
                           class_page.region_profile_view(one, label)), names=[label])
    evidence = class_page.clip_evidence(run, label, correct=False, count=1, method="gradcam", small=True)
    assert_mafw(shown_text([e for e in evidence if isinstance(e, (Figure, str))]), names=[label])


def test_the_region_profile(mafw, no_dfew, tmp_path):
    from analysis.report.region_profile import plot_region_heat_table, write_region_table

    run_dir, run = mafw
    table = pd.read_csv(write_region_table(run_dir, tmp_path / "regions.csv", device="cpu"))
    assert set(table["class"]) == {*MAFW_CLASSES, "all"}
    stage = f"attention {list(run.attention)[-1]}"
    assert_mafw(shown_text(plot_region_heat_table(table, stage), plot_region_heat_table(table, stage, run.class_names)))


def test_the_explorers_labels(mafw, no_dfew):
    from analysis.notebook.widgets import ClassExplorer

    _, run = mafw
    explorer = ClassExplorer(run, methods=["attention", "gradcam"], small=True, frames_shown=2)
    assert [label.split(" (")[0] for label, _ in explorer.class_options()] == list(MAFW_CLASSES)
    assert [label for label, _ in explorer.class_select.options] == [label for label, _ in explorer.class_options()]
    explorer.class_select.value = MAFW_CLASSES.index("disappointment")
    explorer.method_select.value = "gradcam"
    assert "disappointment" in explorer.title_html() and not FORBIDDEN.findall(explorer.title_html())
    assert_mafw(shown_text(explorer.probability_figure()))
    assert_mafw(shown_text(explorer.trajectory_figure(), explorer.strip_figure(),
                           [label for options in map(explorer.clip_options, range(11)) for label, _ in options]),
                names=["disappointment"])
    assert explorer.status.value == ""  # gradcam drew without an error


def test_the_notebook_views(mafw, no_dfew):
    from analysis.attribution.views import attribution_strips, faithfulness_table
    from analysis.internals.ground_truth import CENTRE_PRIOR
    from analysis.internals.views import (attention_ground_truth, attention_strips, class_mean_attention,
                                          clip_trajectories, step_accuracy, trajectory_overview)

    _, run = mafw
    (agreement,) = attention_ground_truth(run)
    assert set(agreement.index.get_level_values("class")) <= {*MAFW_CLASSES, "all"}
    assert CENTRE_PRIOR in agreement.index.get_level_values("stage")
    assert_mafw(shown_text(agreement, class_mean_attention(run), trajectory_overview(run), step_accuracy(run)))
    assert_mafw(shown_text(attention_strips(run, "anxiety", count=1), clip_trajectories(run, "anxiety", count=1),
                           attribution_strips(run, "anxiety", "saliency", count=1, small=True)), names=["anxiety"])
    table = faithfulness_table(run, ["saliency"], per_class=1, small=True)
    assert list(table[table["method"] == "saliency"]["class"]) == [*MAFW_CLASSES, "all"]
