"""One small demo run shared by every notebook test of the session.

``tdrag.train.demo.ensure_demo(root, small=True)`` makes it in seconds (the one place that provisions
the demo). Set ``TDRAG_NOTEBOOK_DEMO=/some/dir`` to keep it between sessions while working on the
notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tdrag.train.demo import ensure_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """``<root>/run`` of the small synthetic demo (``<root>/data`` and ``<root>/cache`` beside it)."""
    keep = os.environ.get("TDRAG_NOTEBOOK_DEMO")
    root = Path(keep) if keep else tmp_path_factory.mktemp("notebook_demo")
    return Path(ensure_demo(root, small=True, progress=False))
