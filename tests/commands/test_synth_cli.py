"""`tdrag synth`: writes a DFEW-format tree, prints a summary, refuses a foreign folder."""

from __future__ import annotations

from tdrag.cli import build_parser, main
from tdrag.data.synthetic import load_meta


def test_synth_is_listed_in_help():
    assert "synth" in build_parser().format_help()


def test_synth_writes_a_tree_and_reports_it(tmp_path, capsys):
    out = tmp_path / "data"
    code = main(["synth", "--out", str(out), "--clips", "7", "--preset", "hard", "--seed", "4", "--size", "40",
                 "--workers", "1", "--no-progress"])
    assert code == 0
    meta = load_meta(out)
    assert (meta["preset"], meta["seed"], meta["size"], meta["num_clips"]) == ("hard", 4, 40, 7)
    assert (out / "EmoLabel_DataSplit" / "test(single-labeled)" / "set_5.csv").is_file()
    printed = capsys.readouterr().out
    assert str(out) in printed and "Happy 1" in printed and "Fear 1" in printed


def test_synth_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "thesis.tex").write_text("do not delete")
    code = main(["synth", "--out", str(tmp_path), "--clips", "7", "--size", "40", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "error:" in err and str(tmp_path) in err and "not empty" in err
    assert (tmp_path / "thesis.tex").read_text() == "do not delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
