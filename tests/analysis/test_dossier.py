"""python -m analysis dossier: one executed, HTML-exported page per class, an index, ownership."""

from __future__ import annotations

import json
import logging
import os

import nbformat
import pytest

from analysis.internals.run import open_run
from analysis.report.class_page import class_summary
from analysis.report.cli import main
from analysis.report.dossier import MARKER, REGION_CSV, build_dossier, dossier_files, is_dossier
from tdrag.data.synthetic import REGIONS
from tdrag.errors import OutputError


class Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def dossier(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("dossier") / "dossier"
    papermill_log = Warnings()
    logging.getLogger("papermill").addHandler(papermill_log)
    try:
        result = build_dossier(tiny_run, out, classes=["Happy", "sad"], small=True, device="cpu", progress=False)
    finally:
        logging.getLogger("papermill").removeHandler(papermill_log)
    return tiny_run, out, result, papermill_log.messages


def test_pages_and_index_with_each_class_recall(dossier):
    run_dir, out, result, warnings = dossier
    assert result.failed == {}
    assert not [m for m in warnings if "unknown parameter" in m], warnings  # papermill knows every parameter
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".html") == ["Happy.html", "Sad.html", "index.html"]
    assert is_dossier(out) and json.loads((out / MARKER).read_text())["classes"] == ["Happy", "Sad"]
    index = (out / "index.html").read_text()
    run = open_run(run_dir, device="cpu", progress=False)
    summary = class_summary(run)
    for name in ("Happy", "Sad"):
        assert f'<a href="{name}.html">{name}</a>' in index
        assert f'<td class="recall">{100 * summary.loc[name, "recall"]:.1f}</td>' in index
    assert run.checkpoint.reason in index
    page = (out / "Sad.html").read_text()
    for heading in ("Precision, recall, F1 and support", "Confusions", "most confident correct clips",
                    "most confusing wrong clips", "Class-mean attention per stage", "nearest competitor",
                    "Keyframe importance", "Agreement with the ground truth", "Facial regions"):
        assert heading in page, heading
    assert "Checkpoint shown" in page and "data:image/png;base64" in page
    assert "mistaken for Sad" in page and "mass_in_mask" in page and "auroc" in page  # synthetic data
    assert "auroc_face" in page and "centre prior (a fixed Gaussian over the centre of the crop, no model)" in page
    assert "Traceback" not in page and "(`METHOD`)" not in page
    assert "the <strong>Integrated Gradients</strong> attribution" in page  # the method named, not the variable
    # The one Sad test clip is shown, correct or not, as a strip and an animation with its MP4.
    assert page.count("data:image/gif;base64,") == 1 and page.count('data:video/mp4;base64,') == 1
    assert "regions drawn by the synthetic renderer" in page


def test_the_index_shows_the_run_its_figures_thumbnails_and_region_heat_table(dossier):
    import pandas as pd

    run_dir, out, result, _ = dossier
    index = (out / "index.html").read_text()
    run = open_run(run_dir, device="cpu", progress=False)
    assert f"WAR {100 * (run.predictions == run.labels).mean():.2f} %" in index
    assert 'alt="confusion matrix (row-normalised)"' in index and 'alt="per-class recall"' in index
    assert 'alt="facial-region heat table"' in index and f'href="{REGION_CSV}"' in index
    for name in ("Happy", "Sad"):
        assert f'alt="{name}: class-mean attention layer' in index  # the thumbnail
    # two figures, two thumbnails, the heat table, the Time section's order tests and temporal agreement
    assert index.count("data:image/png;base64,") == 2 + 2 + 1 + 2
    profile = pd.read_csv(out / REGION_CSV)
    assert set(profile["class"]) == set(run.class_names) | {"all"}  # every analysed clip, not just the pages'
    assert set(profile["region"]) == set(REGIONS) and "ground truth" in set(profile["map"])
    sums = profile.groupby(["class", "map"])["share"].sum(min_count=1).dropna()  # NaN: no mass in any clip
    assert len(sums) and (sums - 1).abs().max() < 1e-5  # the CSV keeps 6 significant digits


def test_a_failing_class_is_listed_and_the_others_go_on(tiny_run, tmp_path):
    """Pages share one kernel, each starting from an empty namespace; a failed page's kernel is
    replaced, and the other pages go on."""
    import re

    template = tmp_path / "page.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("RUN_DIR = ''\nCLASS_NAME = ''\nDEVICE = 'cpu'\nSMALL = False\n"
                                          "MAX_CLIPS = 0\nCHECKPOINT = 'auto'\nMETHOD = ''\nSTAGE = ''\nSAVED_RUN = ''",
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import os\nprint('kernel', os.getpid(), 'left behind:', "
                                          "globals().get('LEFT_BEHIND', 'nothing'))\nLEFT_BEHIND = CLASS_NAME"),
                nbformat.v4.new_code_cell("assert CLASS_NAME != 'Sad', 'boom for ' + CLASS_NAME\nprint('page of', CLASS_NAME)")]
    nbformat.write(nb, template)
    out = tmp_path / "dossier"
    result = build_dossier(tiny_run, out, classes=["Happy", "Sad", "Fear", "Angry"], device="cpu", template=template,
                           progress=False, kernels=1)
    assert result.failed == {"Sad": "AssertionError: boom for Sad"}
    assert set(result.pages) == {"Happy", "Sad", "Fear", "Angry"}  # the failed page is exported too, to read its error
    index = (out / "index.html").read_text()
    assert "failed: AssertionError: boom for Sad" in index and '<ul id="failed">' in index
    assert "page of Fear" in (out / "Fear.html").read_text()
    kernels = {}
    for name in result.pages:
        pid, left = re.search(r"kernel (\d+) left behind: (\w+)", (out / f"{name}.html").read_text()).groups()
        assert left == "nothing", f"{name}'s page saw a variable of the page before"
        kernels[name] = pid
    assert kernels["Happy"] == kernels["Sad"] != kernels["Fear"] == kernels["Angry"]


def test_pages_fail_with_the_reason_when_no_kernel_starts(tiny_run, tmp_path):
    result = build_dossier(tiny_run, tmp_path / "dossier", classes=["Happy", "Sad"], small=True, device="cpu",
                           kernel_name="no-such-kernel", kernels=2, progress=False)
    assert list(result.failed) == ["Happy", "Sad"] and result.pages == {}
    assert all(r.startswith("the page kernel did not start: NoSuchKernel") for r in result.failed.values()), result.failed
    assert "failed: the page kernel did not start" in result.index.read_text()  # the index is written all the same


def test_an_error_beside_the_pages_stops_their_kernels_at_once(tiny_run, tmp_path, monkeypatch):
    """The build fails while a page runs a minute-long cell: it stops at once, the page's kernel is
    gone, and nothing of the build is left behind."""
    import time

    from analysis.report import dossier

    pids = tmp_path / "pids"
    template = tmp_path / "page.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("CLASS_NAME = ''\nSAVED_RUN = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"import os, time\nopen({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
                                          "time.sleep(60)")]
    nbformat.write(nb, template)

    def fails(*args):
        while not pids.is_file():  # a page is running
            time.sleep(0.1)
        raise RuntimeError("boom beside the pages")

    monkeypatch.setattr(dossier, "_measure_index", fails)
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="boom beside the pages"):
        build_dossier(tiny_run, tmp_path / "out", classes=["Happy"], small=True, device="cpu", template=template,
                      kernels=1, progress=False)
    assert time.perf_counter() - start < 50  # not the page's minute
    for pid in pids.read_text().split():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.ipynb", "pids"]  # no dossier, staging or lock


def test_only_a_previous_dossier_or_an_empty_folder_is_replaced(tiny_run, tmp_path, capsys):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a dossier"):
        build_dossier(tiny_run, keep, classes=["Happy"], device="cpu", progress=False)
    assert main(["dossier", str(tiny_run), "--out", str(keep), "--classes", "Happy", "--device", "cpu", "-q"]) == 1
    assert capsys.readouterr().err.strip() == f"error: {keep}: folder holds files that are not a dossier " \
        f"(no {MARKER}); refusing to replace it, choose an empty or new --out"
    assert (keep / "notes.txt").read_text() == "mine"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        build_dossier(tiny_run, tmp_path / "a_file", device="cpu", progress=False)


def test_a_dossier_holds_only_the_files_it_lists_as_its_own(dossier):
    """What a rebuild may replace is listed in one place (DOSSIER_FILES, CLASS_FILES): an output
    written but not listed there would make every rebuild refuse the dossier as somebody else's."""
    _, out, _, _ = dossier
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written <= dossier_files(["Happy", "Sad"]), written - dossier_files(["Happy", "Sad"])
    assert {"Happy.html", "notebooks/Sad.ipynb", MARKER} <= written


def test_cli_rebuilds_a_previous_dossier(dossier, tmp_path, capsys):
    run_dir, out, _, _ = dossier
    assert (out / "Happy.html").is_file() and (out / "notebooks" / "Happy.ipynb").is_file()
    assert main(["dossier", str(run_dir), "--out", str(out), "--classes", "Fear", "--small", "--device", "cpu",
                 "--kernels", "1", "-q"]) == 0
    assert (out / "Fear.html").is_file() and is_dossier(out)
    assert not (out / "Happy.html").exists() and not (out / "notebooks" / "Happy.ipynb").exists()  # its own pages
    assert "1 class page(s)" in capsys.readouterr().out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging or lock left behind


def test_the_index_has_the_time_section_and_its_csvs(dossier):
    """Both Time sections (order tests; temporal agreement on this synthetic run), their CSVs beside
    the pages, with the figures the library computes for the same run."""
    import pandas as pd

    from analysis.internals.order_tests import run_order_tests

    run_dir, out, _, _ = dossier
    index = (out / "index.html").read_text()
    assert 'id="time"' in index and 'id="temporal-agreement"' in index
    assert 'href="order_tests.csv"' in index and 'href="temporal_agreement.csv"' in index
    order = pd.read_csv(out / "order_tests.csv")
    assert list(order.columns) == ["class", "condition", "gru", "recall", "clips"]
    expected = run_order_tests(open_run(run_dir, device="cpu", progress=False), progress=False).per_class
    assert order.recall.fillna(-1).round(5).tolist() == expected.recall.fillna(-1).round(5).tolist()
    agreement = pd.read_csv(out / "temporal_agreement.csv")
    assert list(agreement.columns) == ["class", "view", "auroc", "prior_auroc", "clips"]
    assert {"frame ablation", "integrated gradients", "GRU gain", "decision step"} <= set(agreement.view)


#: A sitecustomize for the processes a dossier build starts (its page kernel): it counts inspection
#: passes (analysis.internals.run.inspect_split, what Run.inspection calls) and every clip handed to
#: an attribution method (by a hash of the clip, its target and the options) into a JSON-lines log.
COUNTER = """
import functools, hashlib, json, os


def record(**entry):
    with open(os.environ["TDRAG_TEST_PASSES"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), **entry}) + "\\n")


def install(set_attribute=setattr, set_item=lambda d, k, v: d.__setitem__(k, v)):
    import analysis.internals.run as run_module
    from analysis.attribution import methods

    inspect_split = run_module.inspect_split

    def counted_inspection(model, cache, rows, **kw):
        record(kind="inspection", clips=len(rows))
        return inspect_split(model, cache, rows, **kw)

    set_attribute(run_module, "inspect_split", counted_inspection)
    for name, method in list(methods.METHODS.items()):
        def counted(model, x, target, _name=name, _method=method, **options):
            for clip, t in zip(x, target.tolist()):
                digest = hashlib.sha1(clip.detach().cpu().numpy().tobytes()).hexdigest()
                record(kind="attribution", method=_name, options=repr(sorted(options.items())), clip=digest, target=t)
            return _method(model, x, target, **options)

        set_item(methods.METHODS, name, functools.wraps(method)(counted))  # check_options reads its signature
    record(kind="installed")


if __name__ == "sitecustomize" and os.environ.get("TDRAG_TEST_PASSES"):
    install()
"""


def test_a_dossier_inspects_the_run_once_and_makes_each_map_once(tiny_run, tmp_path, monkeypatch):
    """One inspection pass for the whole build (the page kernel loads the saved passes), and no
    clip's attribution of a class is made twice: the index's temporal Integrated Gradients serve the
    pages, and a page's strips and scores share their maps."""
    log = tmp_path / "passes.jsonl"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(COUNTER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("TDRAG_TEST_PASSES", str(log))
    counter: dict = {}
    exec(COUNTER, counter)  # not as sitecustomize: this process is patched through monkeypatch, undone after
    counter["install"](monkeypatch.setattr, monkeypatch.setitem)
    result = build_dossier(tiny_run, tmp_path / "dossier", classes=["Happy", "Sad", "Fear"], small=True,
                           device="cpu", progress=False, kernels=2)
    assert result.failed == {}
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len({r["pid"] for r in records if r["kind"] == "installed"}) == 3  # this process and two page kernels
    inspections = [r for r in records if r["kind"] == "inspection"]
    assert inspections == [{"pid": os.getpid(), "kind": "inspection", "clips": len(open_run(tiny_run, progress=False))}]
    made = [(r["method"], r["options"], r["clip"], r["target"]) for r in records if r["kind"] == "attribution"]
    assert made and len(made) == len(set(made)), "a clip's map of a class was made twice"
    assert {"integrated_gradients", "frame_ablation"} <= {m for m, *_ in made}
    assert "saved-run" not in " ".join(p.name for p in result.out.rglob("*"))  # the pages' input is not kept


def test_the_build_and_its_kernels_share_the_cores(monkeypatch):
    """thread_share gives the build and each page kernel cores // (kernels + 1) torch threads (at
    least one); torch_threads sets the count for a block and gives torch its own back."""
    import torch

    from analysis.report import pages

    for cores, kernels, expected in ((2, 2, 1), (2, 1, 1), (16, 4, 3), (8, 1, 4), (1, 4, 1)):
        monkeypatch.setattr(pages, "usable_cores", lambda cores=cores: cores)
        assert pages.thread_share(kernels) == expected
    before = torch.get_num_threads()
    with pages.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
