"""Old config formats, mapped once to the current one: :func:`upgrade` is the one place that knows them.

A config dict (a YAML file, a checkpoint's ``config``, ``build_model``'s options) names its format
in a top-level ``version`` (:data:`CONFIG_VERSION` when tdrag writes it); a dict without one is
format 1, whose model section may then use format 1's keys. Each format change is one function
below, from format N to N + 1, and :func:`upgrade` chains them.

* **Format 1** (until 2026-12): a flat model section whose design choices were flags of the
  model (``attention_mask``, ``attention_residual``, ``attention_pooling``,
  ``attention_learn_temperature``, ``gru_input_norm``, ``gru_readout``, ``gru_residual``,
  ``gru_init``, ``gru_bidirectional``) beside ``attention_stages``, ``attention_temperature``,
  ``gru_hidden``, ``gru_layers``, ``dropout`` and ``gru_branch_dropout``.
* **Format 2**: the attention blocks and the temporal head are parts of the model section
  (``model.attention``, ``model.head``), each with its own fields, and each design is one name
  of its registry (``model.attention.design: softmax+pooling``, ``model.head.design: orthogonal``),
  not a flag: a flag that differed from the chosen design becomes that design's name.

Errors are ValueErrors whose message starts with the key (``model.gru_readout: ...``); the
config reader turns them into ConfigErrors naming where the dict came from.
"""

from __future__ import annotations

from typing import Any

CONFIG_VERSION = 2

# --- format 1 -> 2 ------------------------------------------------------------------------------

#: Format 1's model keys that moved, by their format-2 place (part, field).
V1_MOVED: dict[str, tuple[str, str]] = {
    "attention_stages": ("attention", "stages"), "attention_temperature": ("attention", "temperature"),
    "gru_hidden": ("head", "hidden"), "gru_layers": ("head", "layers"), "dropout": ("head", "dropout"),
    "gru_branch_dropout": ("head", "branch_dropout"),
}
#: Format 1's design flags: the part they belong to and their values, the chosen one first (in the
#: order of the designs they name in format 2's registries, so that joined names come out in it).
V1_FLAGS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "attention_mask": ("attention", ("sigmoid", "softmax")),
    "attention_residual": ("attention", (True, False)),
    "attention_pooling": ("attention", (False, True)),
    "attention_learn_temperature": ("attention", (False, True)),
    "gru_readout": ("head", ("mean", "last", "attention")),
    "gru_init": ("head", ("pytorch", "orthogonal")),
    "gru_bidirectional": ("head", (False, True)),
    "gru_input_norm": ("head", ("layernorm", "none")),
    "gru_residual": ("head", (True, False)),
}
#: The format-2 design each flag value other than the chosen one names.
V1_DESIGNS: dict[tuple[str, Any], str] = {
    ("attention_mask", "softmax"): "softmax", ("attention_residual", False): "gate",
    ("attention_pooling", True): "pooling", ("attention_learn_temperature", True): "learned_temperature",
    ("gru_input_norm", "none"): "no_norm", ("gru_readout", "last"): "last_step",
    ("gru_readout", "attention"): "attention_readout", ("gru_residual", False): "no_pooled_path",
    ("gru_init", "orthogonal"): "orthogonal", ("gru_bidirectional", True): "bidirectional",
}
#: Format 2's chosen designs (each part's design when no flag differs from the chosen value).
V2_CHOSEN = {"attention": "residual", "head": "gru"}
#: A key a *saved* format-1 config lacks (a checkpoint's: tdrag always stored every field) did not
#: exist when it was written; this value rebuilds the network it trained (the first GRU head: raw
#: pooled features, the last state classified; no branch dropout).
V1_BEFORE_KEY: dict[str, Any] = {
    "gru_input_norm": "none", "gru_readout": "last", "gru_residual": False, "gru_init": "pytorch",
    "gru_bidirectional": False, "attention_residual": True, "attention_pooling": False,
    "attention_learn_temperature": False, "gru_branch_dropout": 0.0,
}
V1_MODEL_KEYS = frozenset(V1_MOVED) | frozenset(V1_FLAGS)


def _v1_flag_design(key: str, value: Any) -> str | None:
    """The design a format-1 flag value names (None for the chosen value); ValueError for a bad value."""
    _, values = V1_FLAGS[key]
    if not any(value == v and type(value) is type(v) for v in values):
        raise ValueError(f"model.{key}: {value!r} is not one of {', '.join(map(str, values))}")
    return V1_DESIGNS.get((key, value))


def _put(model: dict[str, Any], part: str, field: str, value: Any, old_key: str) -> None:
    """``model[part][field] = value``, refusing a part that is not a mapping or a field given twice."""
    section = model.setdefault(part, {})
    if not isinstance(section, dict):
        raise ValueError(f"model.{part}: must be a mapping (model.{old_key} is its field {field!r})")
    if field in section:
        raise ValueError(f"model.{old_key}: given together with model.{part}.{field}, its name since config "
                         f"version 2; keep one")
    section[field] = value


def model_v1_to_v2(model: dict[str, Any], saved: bool = False) -> dict[str, Any]:
    """A format-1 model section as format 2 (keys format 1 did not have pass through unchanged).

    ``saved``: the section was stored whole by tdrag (a checkpoint's), so a key it lacks was added
    after it was written and takes :data:`V1_BEFORE_KEY`'s value; in a hand-written section a
    missing key means its default, as it always did.
    """
    if saved:
        model = {**{k: v for k, v in V1_BEFORE_KEY.items() if k not in model}, **model}
    new = {k: v for k, v in model.items() if k not in V1_MODEL_KEYS}
    for key, (part, field) in V1_MOVED.items():
        if key in model:
            _put(new, part, field, model[key], key)
    for part in V2_CHOSEN:
        flags = [key for key, (owner, _) in V1_FLAGS.items() if owner == part and key in model]
        if flags:
            names = [name for key in flags if (name := _v1_flag_design(key, model[key])) is not None]
            _put(new, part, "design", "+".join(names) or V2_CHOSEN[part], flags[0])
    if "attention_temperature" in model:
        # Format 1's sigmoid mask at a fixed temperature never read it; format 2's divides by it.
        design = str(new["attention"].get("design", V2_CHOSEN["attention"]))
        if not {"softmax", "learned_temperature"} & set(design.split("+")):
            new["attention"]["temperature"] = 1.0
    return new


def _v1_to_v2(raw: dict[str, Any], saved: bool) -> dict[str, Any]:
    if not isinstance(raw.get("model"), dict):
        return raw
    return {**raw, "model": model_v1_to_v2(raw["model"], saved)}


#: ``UPGRADES[n]`` maps a format-n config dict to format n + 1.
UPGRADES = {1: _v1_to_v2}


def upgrade(raw: Any, saved: bool = False) -> Any:
    """``raw`` (a config dict of any format, with or without ``version``) in the current format,
    without the ``version`` key; anything but a dict is returned as it is (the reader reports it).

    Args:
        raw: nested dicts as read from YAML or a checkpoint.
        saved: written whole by tdrag (a checkpoint's config), not by hand: see :func:`model_v1_to_v2`.

    Raises:
        ValueError: a version newer than this tdrag's, or an old key with a bad value.
    """
    if not isinstance(raw, dict):
        return raw
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= CONFIG_VERSION:
        raise ValueError(f"version: {version!r} is not a config format this tdrag reads (1..{CONFIG_VERSION}; "
                         "a newer tdrag wrote it?)")
    raw = {k: v for k, v in raw.items() if k != "version"}
    for step in range(version, CONFIG_VERSION):
        raw = UPGRADES[step](raw, saved)
    return raw
