"""tdrag.data.prepare's decision about a cache already at ``out``, as a table of hand-written
cases, and its messages: prepare_cache's parameters from Python, the flags from ``tdrag prepare``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tdrag.commands.prepare import FLAGS
from tdrag.data.cache import CacheError
from tdrag.data.cache_decision import (
    CacheAction,
    CacheDecision,
    CacheDifference,
    FoundCache,
    PrepareError,
    decide_cache,
    refusal,
)

SAME = FoundCache()
OTHER_SETTINGS = FoundCache(changed_settings=("size: 16 -> 12",))
OTHER_SOURCES = FoundCache(changed_sources=("1 clip(s) label changed (00003)",))
BOTH = FoundCache(changed_settings=("frames: 8 -> 16",), changed_sources=("split file a.csv changed",))
SKIPPED = FoundCache(skipped=({"video_id": "00005", "reason": "clip folder missing", "path": "x"},))
SOURCES_AND_SKIPPED = FoundCache(changed_sources=("split file a.csv is new",), skipped=SKIPPED.skipped)

B, U, RB, RF = CacheAction.BUILD, CacheAction.REUSE, CacheAction.REBUILD, CacheAction.REFUSE
N, SET, SRC, SKP = CacheDifference.NONE, CacheDifference.SETTINGS, CacheDifference.SOURCES, CacheDifference.SKIPPED

# found, strict, overwrite -> action, difference
CASES = [
    (None, False, False, B, N),  # nothing finished there: build, whatever is asked
    (None, True, True, B, N),
    (SAME, False, False, U, N),
    (SAME, False, True, U, N),  # overwrite rebuilds what differs, not a cache that is already right
    (SAME, True, False, U, N),  # strict, and nothing was skipped
    (OTHER_SETTINGS, False, False, RF, SET),
    (OTHER_SETTINGS, False, True, RB, SET),
    (BOTH, False, False, RF, SET),  # settings are named first
    (BOTH, True, True, RB, SET),
    (OTHER_SOURCES, False, False, RF, SRC),
    (OTHER_SOURCES, True, True, RB, SRC),
    (SKIPPED, False, False, U, N),  # skipping bad clips is what was asked without strict
    (SKIPPED, False, True, U, N),
    (SKIPPED, True, False, RF, SKP),
    (SKIPPED, True, True, RB, SKP),
    (SOURCES_AND_SKIPPED, True, False, RF, SRC),  # sources before the strict check
]


@pytest.mark.parametrize(("found", "strict", "overwrite", "action", "difference"), CASES)
def test_decision_table(found, strict, overwrite, action, difference):
    assert decide_cache(found, strict=strict, overwrite=overwrite) == CacheDecision(action, difference)


@pytest.mark.parametrize(("found", "difference", "python", "cli"), [
    (OTHER_SETTINGS, SET, "/c: a cache built with other settings is there (size: 16 -> 12); pass another out or "
                          "overwrite=True", "pass another --out or --overwrite"),
    (OTHER_SOURCES, SRC, "/c: the sources changed since this cache was built (1 clip(s) label changed (00003)); "
                         "rebuild it with overwrite=True, or pass another out", "rebuild it with --overwrite, or pass "
                                                                                "another --out"),
    (SKIPPED, SKP, "/c: built skipping 1 bad clip(s) (first: 00005: clip folder missing), which strict=True refuses; "
                   "fix them and pass overwrite=True", "which --strict refuses; fix them and pass --overwrite"),
])
def test_refusals_name_the_parameters_and_the_command_says_its_flags(found, difference, python, cli):
    error = refusal(Path("/c"), found, difference)
    assert isinstance(error, CacheError) and str(error) == python
    said = error.reworded(FLAGS)
    assert isinstance(said, CacheError) and str(said).endswith(cli)
    assert "=True" not in str(said)


def test_values_are_filled_in_as_they_are():
    """A path or reason holding braces is not read as a slot."""
    error = PrepareError("{out}: exists and is not a folder; pass another {p[out]}", out=Path("/d/{p[out]}"))
    assert str(error) == "/d/{p[out]}: exists and is not a folder; pass another out"
    assert str(error.reworded(FLAGS)) == "/d/{p[out]}: exists and is not a folder; pass another --out"


def test_bad_values_name_the_parameter_and_the_flag(tmp_path, capsys):
    from tdrag.cli import main
    from tdrag.data.prepare import prepare_cache

    with pytest.raises(CacheError, match=r"^keyframes: unknown keyframe method 'x'; choose one of redundancy"):
        prepare_cache(tmp_path, tmp_path / "c", keyframes="x", progress=False)
    with pytest.raises(CacheError, match=r"^frames: must be a positive integer, got 0$"):
        prepare_cache(tmp_path, tmp_path / "c", frames=0, progress=False)
    assert main(["prepare", "--root", str(tmp_path), "--out", str(tmp_path / "c"), "--size", "0", "--no-progress"]) == 1
    assert capsys.readouterr().err.strip() == "error: --size: must be a positive integer, got 0"
    assert not (tmp_path / "c").exists()
