"""Shared pytest setup: the `gpu` marker skips without CUDA; torch uses few threads on 2 cores."""

from __future__ import annotations

import pytest
import torch

# Session fixtures tiny_cache (synthetic set + frame cache), tiny_run (a 2-epoch trained run) and
# tiny_mafw_run (the same on an 11-class set in MAFW's layout).
from tests.run_fixtures import tiny_cache, tiny_mafw_run, tiny_run  # noqa: F401

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
