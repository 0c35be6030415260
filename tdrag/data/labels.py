"""Class lists and label maps.

DFEW's CSVs store labels 1..7 in the order of ``DFEW_CLASSES``; tdrag uses 0..6 everywhere else.
Other datasets have their own lists and orders, so each reader names the label map it uses.
"""

from __future__ import annotations

#: DFEW's seven basic emotions, in DFEW's label order (CSV label = index + 1).
DFEW_CLASSES: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
NUM_DFEW_CLASSES = len(DFEW_CLASSES)


def dfew_label_from_csv(value: int | str) -> int:
    """Map a DFEW CSV label (1..7) to tdrag's 0-based class index.

    Raises:
        ValueError: if ``value`` is not an integer in 1..7.
    """
    try:
        label = int(str(value).strip())
    except ValueError:
        raise ValueError(f"label {value!r} is not an integer (DFEW labels are 1..7)") from None
    if not 1 <= label <= NUM_DFEW_CLASSES:
        raise ValueError(f"label {label} is outside 1..{NUM_DFEW_CLASSES}")
    return label - 1


def dfew_label_to_csv(index: int) -> int:
    """Map a 0-based class index back to DFEW's 1-based CSV label."""
    if not 0 <= int(index) < NUM_DFEW_CLASSES:
        raise ValueError(f"class index {index} is outside 0..{NUM_DFEW_CLASSES - 1}")
    return int(index) + 1
