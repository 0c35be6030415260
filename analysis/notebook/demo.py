"""Where a notebook's run comes from: the run it names, or, when it asks with ``DEMO = True``, the
demo made there by ``tdrag.train.demo.ensure_demo`` (the one place that provisions it).

    run = open_run(locate_run(RUN_DIR, demo=DEMO, small=SMALL))
"""

from __future__ import annotations

import os
from pathlib import Path


def locate_run(run_dir: str | os.PathLike, demo: bool = False, small: bool = False, progress: bool = True) -> Path:
    """``run_dir`` as it is (``demo=False``: opening a missing run is then ``open_run``'s error), or
    the demo run there (``demo=True``: ``tdrag.train.demo.ensure_demo(<run_dir>/..)``, made when missing,
    minutes on a CPU; seconds with ``small``)."""
    run_dir = Path(run_dir)
    if not demo:
        return run_dir
    if run_dir.name != "run":
        raise ValueError(f"DEMO = True makes the demo in <folder>/run; RUN_DIR={str(run_dir)!r} does not end in /run")
    from tdrag.train.demo import ensure_demo

    return Path(ensure_demo(run_dir.parent, small=small, progress=progress))
