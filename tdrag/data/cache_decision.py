"""Whether ``prepare_cache`` builds, reuses, rebuilds or refuses the cache at ``out``: the decision as
a pure function of what is there and what is asked (:func:`decide_cache`, tested as a table), and
the error that names ``prepare_cache``'s parameters (:class:`PrepareError`), which a front end
says in its own words (``tdrag prepare``: its flags). ``tdrag.data.prepare`` reads what is there and
acts on the decision.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tdrag.data.cache import CacheError

# How the messages name prepare_cache's parameters when it is called from Python.
PARAMETERS = {"out": "out", "overwrite": "overwrite=True", "strict": "strict=True", "keyframes": "keyframes",
              "frames": "frames", "size": "size"}


class PrepareError(CacheError):
    """A CacheError whose message names ``prepare_cache``'s parameters through ``{p[name]}`` slots.

    ``template`` holds the slots and ``{field}`` places for ``values`` (paths, lists: filled in
    as they are, never parsed again); the message is said with :data:`PARAMETERS`.
    """

    def __init__(self, template: str, **values: Any) -> None:
        self.template, self.values = template, values
        super().__init__(self.say(PARAMETERS))

    def say(self, names: Mapping[str, str]) -> str:
        """The message with each parameter called by ``names`` (those missing keep their own name)."""
        return self.template.format(p={**PARAMETERS, **names}, **self.values)

    def reworded(self, names: Mapping[str, str]) -> CacheError:
        """The same error as a front end says it (``{"out": "--out", ...}``)."""
        return CacheError(self.say(names))


class CacheAction(enum.Enum):
    """What ``prepare_cache`` does about ``out``."""

    BUILD = "build"  # no finished cache there
    REUSE = "reuse"  # a finished cache of these settings and sources: left as it is
    REBUILD = "rebuild"  # it differs, and overwrite allows replacing it
    REFUSE = "refuse"  # it differs, and overwrite is off


class CacheDifference(enum.Enum):
    """The first way, in this order, a finished cache differs from what is asked."""

    NONE = "none"
    SETTINGS = "settings"  # frames, size, keyframes, folds, dataset, root, layout
    SOURCES = "sources"  # split files or clips changed since it was built
    SKIPPED = "skipped"  # it was built skipping bad clips, which strict refuses


@dataclass(frozen=True)
class FoundCache:
    """What a finished cache at ``out`` holds, as the decision sees it (read by :func:`_found_cache`).

    Fields (each empty when nothing differs):
        changed_settings: ``"size: 16 -> 12"``, one per setting that differs.
        changed_sources: what changed in the sources since it was built, one line each.
        skipped: the clips it was built without (the manifest's ``skipped`` entries).
    """

    changed_settings: tuple[str, ...] = ()
    changed_sources: tuple[str, ...] = ()
    skipped: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class CacheDecision:
    """What to do about ``out`` (``action``) and why (``difference``: NONE to build or reuse)."""

    action: CacheAction
    difference: CacheDifference


def decide_cache(found: FoundCache | None, *, strict: bool, overwrite: bool) -> CacheDecision:
    """Build, reuse, rebuild or refuse: the cache at ``out`` (``found``; None when there is no
    finished one) against what is asked. Settings are compared first, then sources, then (under
    ``strict`` only) the clips it skipped; ``overwrite`` rebuilds what differs and nothing else."""
    if found is None:
        return CacheDecision(CacheAction.BUILD, CacheDifference.NONE)
    if found.changed_settings:
        difference = CacheDifference.SETTINGS
    elif found.changed_sources:
        difference = CacheDifference.SOURCES
    elif strict and found.skipped:
        difference = CacheDifference.SKIPPED
    else:
        return CacheDecision(CacheAction.REUSE, CacheDifference.NONE)
    return CacheDecision(CacheAction.REBUILD if overwrite else CacheAction.REFUSE, difference)


def refusal(out: Path, found: FoundCache, difference: CacheDifference) -> PrepareError:
    """The error for a cache that differs by ``difference`` while ``overwrite`` is off."""
    if difference is CacheDifference.SETTINGS:
        return PrepareError("{out}: a cache built with other settings is there ({changed}); pass another {p[out]} "
                            "or {p[overwrite]}", out=out, changed=", ".join(found.changed_settings))
    if difference is CacheDifference.SOURCES:
        return PrepareError("{out}: the sources changed since this cache was built ({changes}); rebuild it with "
                            "{p[overwrite]}, or pass another {p[out]}", out=out,
                            changes="; ".join(found.changed_sources))
    first = found.skipped[0]
    return PrepareError("{out}: built skipping {n} bad clip(s) (first: {video}: {reason}), which {p[strict]} "
                        "refuses; fix them and pass {p[overwrite]}", out=out, n=len(found.skipped),
                        video=first["video_id"], reason=first["reason"])
