"""The dataset readers by name: ``get_reader("dfew" | "ferv39k" | "mafw")``.

A reader is a module with the same small interface, so the frame cache, the CLI and the tests
treat every dataset alike:

    NAME, CLASSES, FOLDS                       its name, class list (label order) and folds
    find_layout(root, **options) -> layout     where its frames and split files are; raises
                                               DatasetError naming what was expected where
    read_folds(layout, folds, strict)          {fold: {"train" | "test": SplitResult}}
    split_files(layout, folds) -> [Path]       the split files (the cache fingerprints them)
    layout_settings(layout) -> dict            what of the layout the cache records
    LAYOUT_OPTIONS                             the keyword options find_layout takes

Each reader's class list and order is its own; it travels with the cache (``manifest.json``
``classes``), the run, the reports and the notebooks.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tdrag.data.clips import DatasetError

#: Reader module of each dataset name.
READERS: dict[str, str] = {
    "dfew": "tdrag.data.dfew",
    "ferv39k": "tdrag.data.ferv39k",
    "mafw": "tdrag.data.mafw",
}


def dataset_names() -> tuple[str, ...]:
    """The dataset names ``tdrag prepare --dataset`` accepts."""
    return tuple(READERS)


def get_reader(name: str) -> ModuleType:
    """The reader module of dataset ``name``; DatasetError listing the known names otherwise."""
    if name not in READERS:
        raise DatasetError(f"dataset {name!r}: unknown (known: {', '.join(READERS)})")
    return importlib.import_module(READERS[name])
