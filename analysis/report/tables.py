"""Small Markdown and LaTeX (booktabs) writers for DataFrames of already-formatted cells.

pandas' ``to_markdown`` needs the optional ``tabulate`` package and ``to_latex`` needs jinja2; these
few lines need neither and give the exact layout the reports use.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _cells(df: pd.DataFrame, index: bool) -> tuple[list[str], list[list[str]]]:
    header = ([str(df.index.name or "")] if index else []) + [str(c) for c in df.columns]
    body = [
        ([str(label)] if index else []) + ["" if pd.isna(v) else str(v) for v in row]
        for label, row in zip(df.index, df.itertuples(index=False))
    ]
    return header, body


def to_markdown(df: pd.DataFrame, index: bool = True) -> str:
    """GitHub-flavoured Markdown table; first column left-aligned, the others right-aligned."""
    header, body = _cells(df, index)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(":" + "-" * (w + 1) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in body)]) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; "±" becomes ``$\\pm$`` and "–" (n/a cells) ``--``."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return out.replace("±", r"$\pm$").replace("–", "--")


def to_latex(df: pd.DataFrame, index: bool = True, caption: str | None = None, label: str | None = None) -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``), cells escaped."""
    header, body = _cells(df, index)
    spec = "l" + "r" * (len(header) - 1)
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [
        r"\begin{tabular}{" + spec + "}",
        r"\toprule",
        " & ".join(latex_escape(c) for c in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def export_table(table, out_dir: str | os.PathLike, name: str, caption: str | None = None) -> list[Path]:
    """Write a DataFrame as ``<name>.csv``, ``<name>.md`` and ``<name>.tex`` in ``out_dir``
    (atomically); returns the paths. The LaTeX is a ``table`` with ``caption`` and ``tab:<name>``."""
    from tdrag.atomic import atomic_path, write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md, tex = (out_dir / f"{name}.{ext}" for ext in ("csv", "md", "tex"))
    with atomic_path(csv) as tmp:
        table.to_csv(tmp)
    write_text(md, to_markdown(table))
    write_text(tex, to_latex(table, caption=caption or name.replace("_", " ").capitalize(), label=f"tab:{name}"))
    return [csv, md, tex]
