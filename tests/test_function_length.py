"""No function in ``tdrag/`` or ``analysis/`` holds more than ``LIMIT`` lines of code.

A line of code is one that holds a token of code: blank lines, comments and docstrings (the
function's own and those of functions and classes inside it) do not count; a statement broken
over several lines counts each of them. A nested function's lines count for the function that
holds it too, as a reader has to read them there.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tdrag", "analysis")
LIMIT = 80
NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
            tokenize.ENDMARKER}


def code_lines(source: str) -> set[int]:
    """The numbers of the lines that hold a token of code (a multi-line string: each of its lines)."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NOT_CODE:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines


def docstring_lines(tree: ast.AST) -> set[int]:
    """The lines of every docstring of a function, class or module in ``tree``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            is_text = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if is_text and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def function_lengths(source: str) -> dict[str, int]:
    """``{qualified name: lines of code}`` of every function and method in ``source`` (from its
    ``def`` line to its last line; decorators not counted)."""
    tree = ast.parse(source)
    code = code_lines(source) - docstring_lines(tree)
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                if name in lengths:  # a property's setter, a function defined in two branches
                    name += f"@{child.lineno}"
                lengths[name] = len(code & set(range(child.lineno, child.end_lineno + 1)))
                name += "."
            elif isinstance(child, ast.ClassDef):
                name = f"{prefix}{child.name}."
            visit(child, name)

    visit(tree, "")
    return lengths


SAMPLE = '''
def f(x):
    """A docstring
    over two lines."""
    # a comment

    y = (x +
         1)
    text = """a string
    is code"""

    def inner():
        """Its docstring."""
        return y
    return inner


class C:
    @property
    def g(self):
        return 1

    @g.setter
    def g(self, value):
        pass
'''


def test_the_count_skips_docstrings_comments_and_blank_lines():
    # f: def, y = (x +, 1), text = ..., is code, def inner, return y, return inner
    assert function_lengths(SAMPLE) == {"f": 8, "f.inner": 2, "C.g": 2, "C.g@24": 2}


def long_functions(root: Path, packages: tuple[str, ...] = PACKAGES, limit: int = LIMIT) -> list[str]:
    """``"<file>: <function>: <n> lines of code"`` for each function over ``limit`` in ``packages``."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for name, length in function_lengths(path.read_text(encoding="utf-8")).items():
                if length > limit:
                    found.append(f"{path.relative_to(root)}: {name}: {length} lines of code")
    return found


def test_a_long_function_is_named(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    long_body = "".join(f"        x{i} = {i}\n" for i in range(LIMIT))  # + the def line: LIMIT + 1
    short_body = "".join(f"    x{i} = {i}\n" for i in range(LIMIT - 1))  # LIMIT exactly
    source = f'class K:\n    def long(self):\n        """Doc."""\n{long_body}\n\ndef short():\n{short_body}'
    (tmp_path / "pkg" / "sub" / "m.py").write_text(source)
    assert long_functions(tmp_path, ("pkg",)) == [f"pkg/sub/m.py: K.long: {LIMIT + 1} lines of code"]


def test_no_function_is_longer_than_the_limit():
    offenders = long_functions(ROOT)
    assert not offenders, f"functions over {LIMIT} lines of code (split them):\n" + "\n".join(offenders)
