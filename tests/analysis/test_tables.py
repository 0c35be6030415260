"""analysis.report.tables: the Markdown and LaTeX writers."""

from __future__ import annotations

import pandas as pd

from analysis.report.tables import latex_escape, to_latex, to_markdown


def test_markdown_aligns_columns():
    df = pd.DataFrame({"x": ["1", "22"]}, index=pd.Index(["a", "bbbb"], name="name"))
    assert to_markdown(df) == "| name |   x |\n|:-----|----:|\n| a    |   1 |\n| bbbb |  22 |\n"
    assert to_markdown(df, index=False) == "| x   |\n|:----|\n| 1   |\n| 22  |\n"


def test_latex_escapes_and_uses_booktabs():
    assert latex_escape("a_b & 50% ± 1 –") == r"a\_b \& 50\% $\pm$ 1 --"
    df = pd.DataFrame({"WAR": ["50.00 ± 1.00"]}, index=pd.Index(["fold_1"], name="fold"))
    tex = to_latex(df, caption="A & B", label="tab:x")
    lines = tex.splitlines()
    assert lines[:4] == [r"\begin{table}[t]", r"\centering", r"\caption{A \& B}", r"\label{tab:x}"]
    assert r"\begin{tabular}{lr}" in lines and r"fold & WAR \\" in lines
    assert r"fold\_1 & 50.00 $\pm$ 1.00 \\" in lines
    assert lines[-3:] == [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
