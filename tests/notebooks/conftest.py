"""One tiny trained run shared by every notebook test of the session.

Training it takes seconds at ``analysis.notebook_setup.SMALL_DEMO`` sizes. Set
``TDRAG_NOTEBOOK_DEMO=/some/dir`` to keep it between sessions while working on the notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analysis.notebook_setup import ensure_demo_run


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """``<root>/run`` of a tiny synthetic demo (``<root>/data`` and ``<root>/cache`` beside it)."""
    keep = os.environ.get("TDRAG_NOTEBOOK_DEMO")
    root = Path(keep) if keep else tmp_path_factory.mktemp("notebook_demo")
    return ensure_demo_run(root, small=True)
