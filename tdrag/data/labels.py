"""Class lists and label maps (DFEW, FERV39k, MAFW).

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


#: FERV39k's seven classes, in the label order of the public FERV39k code (MAE-DFER,
#: preprocess/ferv39k.py: Happy 0, Sad 1, Neutral 2, Angry 3, Surprise 4, Disgust 5, Fear 6; DFEW's
#: order). FERV39k's split files name the class ("Happy"), they hold no number.
FERV39K_CLASSES: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")

#: MAFW's eleven single-expression classes, in MAFW's own order (its README and MAE-DFER's
#: preprocess/mafw.py). MAFW's split files name the class in lower case ("happiness").
MAFW_CLASSES: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise",
    "contempt", "anxiety", "helplessness", "disappointment",
)


def label_from_name(value: str, classes: tuple[str, ...], dataset: str) -> int:
    """Map a class name as a split file writes it to its 0-based index in ``classes``.

    Case and surrounding spaces are ignored (``"happy"`` and ``"Happy "`` are FERV39k's Happy).

    Raises:
        ValueError: the name is empty or not one of ``classes`` (the message lists them).
    """
    name = str(value).strip()
    if not name:
        raise ValueError(f"no label (expected one of the {dataset} classes: {', '.join(classes)})")
    lowered = {c.lower(): i for i, c in enumerate(classes)}
    if name.lower() not in lowered:
        hint = " (labels are class names, not numbers)" if name.lstrip("+-").isdigit() else ""
        raise ValueError(f"label {name!r} is not a {dataset} class{hint}; expected one of {', '.join(classes)}")
    return lowered[name.lower()]


def ferv39k_label(value: str) -> int:
    """FERV39k class name (``"Happy"``) -> 0-based index in :data:`FERV39K_CLASSES`."""
    return label_from_name(value, FERV39K_CLASSES, "FERV39k")


def mafw_label(value: str) -> int:
    """MAFW class name (``"happiness"``) -> 0-based index in :data:`MAFW_CLASSES`."""
    return label_from_name(value, MAFW_CLASSES, "MAFW")
