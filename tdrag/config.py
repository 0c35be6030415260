"""Run configuration: dataclasses <-> YAML, with ``key=value`` overrides.

A config file has up to four sections, ``data``, ``model``, ``train`` and ``synth`` (the synthetic
set `tdrag demo` renders), each mapping to the dataclass of the same name; the model section has
two parts of its own, ``model.attention`` and ``model.head``. Every field has a default, written
once, in :mod:`tdrag.config_sections`, so a file names only what it changes. Overrides from the command line use
``section.field=value`` (``model.head.hidden=64``), or a bare ``field=value`` when the name is
unique across sections (``hidden=64``).

Values are read as YAML 1.2 (ruamel.yaml's safe loader: ``1e-3`` is a float, ``yes`` is a
string, as opposed to YAML 1.1, where ``1e-3`` is a string and ``yes`` a boolean), type-checked
against the field and range-checked (``train.lr`` > 0, ``data.crop`` <= ``data.size``, ...): a bad
value raises ``ConfigError`` naming the key, before any work starts. The fields that take one of a
few names list them in :data:`CHOICES`, each the registry of the module that implements it; the
attention and head designs may join several names with "+" (:data:`DESIGNS`).

A saved config carries its format's ``version``; an older format (a file or checkpoint written
before the model had parts, or one without a version) is mapped to the current one by
:func:`tdrag.config_versions.upgrade`, so old files, checkpoints and overrides
(``model.gru_hidden=64``) still read.

Example::

    cfg = load_config("configs/dfew_tdrag.yaml", ["train.lr=0.05", "fold=2"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
import re
import typing
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from tdrag.atomic import write_text
from tdrag.config_sections import (  # noqa: F401 -- re-exported: the sections are part of this module's API
    AttentionConfig,
    Config,
    DataConfig,
    HeadConfig,
    ModelConfig,
    SynthConfig,
    TrainConfig,
)
from tdrag.config_versions import CONFIG_VERSION, V1_FLAGS, V1_MODEL_KEYS, V1_MOVED, model_v1_to_v2, upgrade
from tdrag.errors import TdragError


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "synth": SynthConfig}


class ConfigError(TdragError, ValueError):
    """A config file or override names an unknown key, or gives a value of the wrong type or range."""


def _yaml() -> YAML:
    """ruamel.yaml's safe YAML 1.2 reader and writer (pure Python: no C extension needed); mappings
    are written in their own order (sections, then fields as the dataclasses declare them)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.sort_base_mapping_type_on_output = False
    return yaml


def parse_yaml(text: str):
    """Parse YAML 1.2 text (``1e-3`` -> 0.001, ``yes`` -> "yes"); ``YAMLError`` when it is not YAML."""
    return _yaml().load(text)


def config_to_yaml(config: Config) -> str:
    """``config`` as the YAML text :func:`save_config` writes (every section and field)."""
    buffer = io.StringIO()
    _yaml().dump(config_to_dict(config), buffer)
    return buffer.getvalue()


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` converted to the field's type, or raise ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            item_types = list(args)
        return tuple(_check_value(f"{key}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, item_types)))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {annotation!r}")


def _in_source(message: str, source: str) -> str:
    """``message`` naming where the value came from, unless that is a plain config or the overrides
    (whose messages already name the key)."""
    return message if source in ("config", "overrides") else f"{message} (in {source})"


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _build(cls: type, values: Any, key: str, source: str) -> Any:
    """The dataclass ``cls`` (a section, or a part of one such as ``model.head``) from the mapping
    ``values``, every key known and every value of its field's type; ``key`` names it in errors."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: '{key}' must be a mapping")
    types = _field_types(cls)
    kwargs = {}
    for name, value in values.items():
        if name not in types:
            raise ConfigError(f"{source}: unknown key '{key}.{name}' (known: {', '.join(types)})")
        if dataclasses.is_dataclass(types[name]):
            kwargs[name] = _build(types[name], value or {}, f"{key}.{name}", source)
            continue
        try:
            kwargs[name] = _check_value(f"{key}.{name}", value, types[name])
        except ConfigError as exc:
            raise ConfigError(_in_source(str(exc), source)) from None
    return cls(**kwargs)


def config_from_dict(raw: dict[str, Any] | None, source: str = "config") -> Config:
    """Build a Config from nested dicts (as read from YAML), checking keys and types.

    ``raw`` may be of any config format (its ``version``; none is format 1):
    :func:`tdrag.config_versions.upgrade` maps it to the current one first.
    """
    try:
        raw = upgrade(raw or {})
    except ValueError as exc:
        raise ConfigError(_in_source(str(exc), source)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with sections {'/'.join(_SECTIONS)}")
    sections = {name: _build(cls, raw.get(name) or {}, name, source) for name, cls in _SECTIONS.items()}
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)} (known: {', '.join(_SECTIONS)})")
    config = Config(**sections)
    validate(config, source)
    return _in_registry_order(config)


#: The device strings tdrag accepts (``train.device``, ``--device``); tdrag.runtime resolves them.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")

#: The names each choice field accepts, checked here before any work starts. Each tuple is the
#: registry of the module that implements the choice (named beside it), in that registry's
#: order. config is the ground floor and cannot import those modules, so
#: ``tests/test_config.py::REGISTRIES`` ties every entry to its registry: a name added to one and
#: not the other fails there. A new choice field: its names here, its implementation's registry
#: (a tuple, or a dict by name) in its module, and the pair in REGISTRIES. A new design of a
#: :data:`DESIGNS` field: its class in the registry, its name here.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.dataset": ("dfew", "ferv39k", "mafw"),                  # tdrag.data.datasets.READERS
    "data.keyframes": ("redundancy", "uniform", "redundancy_greedy"),  # tdrag.data.keyframes.KEYFRAME_METHODS
    # tdrag.models.registry.MODEL_NAMES:
    "model.name": ("r3d18", "tdrag", "tdrag_no_attention", "tdrag_no_gru", "tdrag_trunk"),
    # tdrag.models.tdrag.ATTENTIONS:
    "model.attention.design": ("residual", "softmax", "gate", "pooling", "learned_temperature"),
    # tdrag.models.tdrag.HEADS:
    "model.head.design": ("gru", "last_step", "attention_readout", "orthogonal", "bidirectional", "no_norm",
                          "no_pooled_path"),
    "train.optimizer": ("sgd", "adamw"),                          # tdrag.train.schedule.OPTIMIZERS
    "train.schedule": ("cosine", "step"),                         # tdrag.train.schedule.SCHEDULES
    "train.step_loss": ("last", "mean", "linear"),                # tdrag.train.losses.STEP_LOSSES
    "train.attention_penalty": ("none", "l1", "entropy"),         # tdrag.train.losses.ATTENTION_PENALTIES
    "synth.preset": ("easy", "medium", "hard", "order"),          # tdrag.data.synthetic.presets.PRESETS
    "synth.layout": ("dfew", "ferv39k", "mafw"),                  # tdrag.data.synthetic.layouts.LAYOUTS
}
#: Choice fields whose value may join several names with "+": a design registry's first name is
#: the chosen design, and each other name changes one thing of it ("softmax+pooling").
DESIGNS = ("model.attention.design", "model.head.design")


def _get(config: Any, key: str) -> Any:
    """The value at the dotted ``key`` (``model.head.design``) of ``config``."""
    for name in key.split("."):
        config = getattr(config, name)
    return config


def _choice_problem(key: str, value: str) -> str | None:
    """What is wrong with ``value`` for the choice field ``key`` (None: nothing)."""
    allowed = CHOICES[key]
    parts = value.split("+") if key in DESIGNS else [value]
    bad = [p for p in parts if p not in allowed]
    if bad:
        joiner = " (several joined with '+')" if key in DESIGNS else ""
        return f"{bad[0]!r} is not one of {', '.join(allowed)}{joiner}"
    if len(set(parts)) != len(parts):
        return f"{value!r} names a design twice"
    return None


def _in_registry_order(config: Config) -> Config:
    """``config`` with each design written one way: its names in registry order, the chosen one
    left out when others change it (``pooling+softmax`` -> ``softmax+pooling``)."""
    changes: dict[str, dict[str, Any]] = {}
    for key in DESIGNS:
        allowed, parts = CHOICES[key], _get(config, key).split("+")
        parts = sorted(set(parts) - {allowed[0]}, key=allowed.index) or [allowed[0]]
        section, part, name = key.split(".")
        changes.setdefault(section, {})[part] = {name: "+".join(parts)}
    return replace(config, **changes)


def validate(config: Config, source: str = "config") -> None:
    """Check the values' ranges and choices; raise ConfigError naming the first bad key.

    Only what can be decided from the config alone is checked here (``data.crop`` against the
    cache's frame size, for example, is checked when the cache is opened).
    """
    d, m, t, s = config.data, config.model, config.train, config.synth

    def fail(key: str, problem: str) -> None:
        raise ConfigError(_in_source(f"{key}: {problem}", source))

    for key in CHOICES:
        problem = _choice_problem(key, _get(config, key))
        if problem:
            fail(key, problem)
    positive = {
        "data.fold": d.fold, "data.frames": d.frames, "data.size": d.size, "data.crop": d.crop,
        "model.num_classes": m.num_classes, "model.width": m.width, "model.head.hidden": m.head.hidden,
        "model.head.layers": m.head.layers, "train.epochs": t.epochs, "train.batch_size": t.batch_size,
        "train.step_epochs": t.step_epochs, "train.eval_every": t.eval_every, "synth.clips": s.clips,
    }
    for key, value in positive.items():
        if value < 1:
            fail(key, f"must be at least 1, got {value}")
    if d.crop > d.size:
        fail("data.crop", f"{d.crop} exceeds data.size {d.size} (the crop is taken from the cached frame)")
    low, high = d.crop_scale
    if not 0.0 < low <= high <= 1.0:
        fail("data.crop_scale", f"expected 0 < min <= max <= 1, got {list(d.crop_scale)}")
    if not 0.0 <= d.val_fraction < 1.0:
        fail("data.val_fraction", f"must be in [0, 1), got {d.val_fraction}")
    if d.num_workers < 0:
        fail("data.num_workers", f"must be >= 0, got {d.num_workers}")
    _validate_model(m, fail)
    if t.lr <= 0:
        fail("train.lr", f"must be > 0, got {t.lr}")
    for key, value in (("train.momentum", t.momentum), ("train.label_smoothing", t.label_smoothing)):
        if not 0.0 <= value < 1.0:
            fail(key, f"must be in [0, 1), got {value}")
    for key, value in (("train.weight_decay", t.weight_decay), ("train.grad_clip", t.grad_clip),
                       ("train.warmup_epochs", t.warmup_epochs), ("train.attention_penalty_weight",
                                                                  t.attention_penalty_weight)):
        if value < 0:
            fail(key, f"must be >= 0, got {value}")
    if not 0.0 < t.step_gamma <= 1.0:
        fail("train.step_gamma", f"must be in (0, 1], got {t.step_gamma}")
    if not DEVICE_PATTERN.match(t.device):
        fail("train.device", f"{t.device!r} is not a device (use auto, cpu, cuda, cuda:N or mps)")
    if s.render_size < 32:
        fail("synth.render_size", f"must be at least 32 pixels, got {s.render_size}")


def _validate_model(m: ModelConfig, fail: Any) -> None:
    """The model section's ranges (its choices are checked with the others)."""
    if any(v < 1 for v in m.temporal_strides):
        fail("model.temporal_strides", f"expected 4 positive integers, got {list(m.temporal_strides)}")
    if m.causal_time and m.local_time:
        fail("model.local_time", "cannot be combined with model.causal_time (choose one way to treat time)")
    stages = m.attention.stages
    if any(not 1 <= v <= 4 for v in stages) or len(set(stages)) != len(stages):
        fail("model.attention.stages", f"expected distinct stage numbers in 1..4, got {list(stages)}")
    if m.attention.temperature <= 0:
        fail("model.attention.temperature", f"must be > 0, got {m.attention.temperature}")
    if "pooling" in m.attention.design.split("+") and 4 not in stages and m.name in ("tdrag", "tdrag_no_gru"):
        fail("model.attention.design", f"pooling needs stage 4 in model.attention.stages, got {list(stages)}")
    for key, value in (("model.head.dropout", m.head.dropout), ("model.head.branch_dropout", m.head.branch_dropout)):
        if not 0.0 <= value < 1.0:
            fail(key, f"must be in [0, 1), got {value}")


def _fields_of(raw: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every field in ``raw`` (a config as nested dicts): ``("model", "head", "hidden")``."""
    paths: list[tuple[str, ...]] = []
    for name, value in raw.items():
        paths += _fields_of(value, (*prefix, name)) if isinstance(value, dict) else [(*prefix, name)]
    return paths


def _override_path(key: str, paths: list[tuple[str, ...]], item: str) -> tuple[str, ...]:
    """The field an override's ``key`` names: a dotted path (``model.head.hidden``) or a field name
    found once (``hidden``); a model key of config format 1 (``model.gru_readout``) as ``("model", key)``."""
    if "." in key:
        path = tuple(key.split("."))
        if path in paths or (len(path) == 2 and path[0] == "model" and path[1] in V1_MODEL_KEYS):
            return path
        inside = [p[len(path)] for p in paths if p[:len(path)] == path]
        if inside:
            raise ConfigError(f"override {item!r}: '{key}' holds fields ({', '.join(inside)}); set one of them, "
                              f"e.g. {key}.{inside[0]}=...")
        raise ConfigError(f"override {item!r}: unknown key '{key}'")
    owners = [p for p in paths if p[-1] == key]
    if not owners and key in V1_MODEL_KEYS:
        return ("model", key)
    if len(owners) != 1:
        where = ", ".join(".".join(p[:-1]) for p in owners)
        what = "unknown" if not owners else f"ambiguous (in {where})"
        raise ConfigError(f"override {item!r}: key '{key}' is {what}; use section.field")
    return owners[0]


def _merge(into: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``into`` with ``changes`` written over it, mappings merged key by key (a new dict)."""
    out = dict(into)
    for key, value in changes.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def _model_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Changes to a model section with its keys of config format 1 in their places (``gru_hidden`` ->
    ``head.hidden``); format 1's design flags set the design they name, as in a format-1 config."""
    flags = {k: v for k, v in changes.items() if k in V1_MODEL_KEYS and k not in V1_MOVED}
    try:
        out = model_v1_to_v2(flags)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for key, value in changes.items():
        if key in V1_MOVED:
            part, name = V1_MOVED[key]
            out = _merge(out, {part: {name: value}})
        elif key not in flags:
            out = _merge(out, {key: value})
    return out


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a copy of ``config`` with ``section.field=value`` (``model.head.hidden=64``) or a field
    name found once (``hidden=64``) applied. Model keys of config format 1 (``model.gru_hidden=64``,
    ``gru_readout=last``) are read as a format-1 config's; an error about one names it."""
    raw, old = asdict(config), {}
    paths = _fields_of(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, text = item.split("=", 1)
        path = _override_path(key.strip(), paths, item)
        try:
            value = parse_yaml(text) if text.strip() else ""
        except YAMLError as exc:
            raise ConfigError(f"{key.strip()}: cannot parse the value {text!r} ({_first_line(exc)})") from None
        if path in paths:
            raw = _merge(raw, functools.reduce(lambda inner, name: {name: inner}, reversed(path), value))
        else:
            old[path[1]] = value
    raw["model"] = _merge(raw["model"], _model_changes(old))
    try:
        return config_from_dict({"version": CONFIG_VERSION, **raw}, source="overrides")
    except ConfigError as exc:
        given = {f"model.{'.'.join(V1_MOVED[k])}": f"model.{k}" for k in old if k in V1_MOVED}
        given.update({f"model.{V1_FLAGS[k][0]}.design": f"model.{k}" for k in old if k in V1_FLAGS})
        note = next((f" (given as {o})" for new, o in given.items() if str(exc).startswith(new + ":")), "")
        raise ConfigError(f"{exc}{note}") from None


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides."""
    if path is None:
        config = Config()
    else:
        config = config_from_dict(read_config_file(path), source=str(path))
    return apply_overrides(config, overrides)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.split()) if text else type(exc).__name__


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw mapping of a YAML config file; ConfigError naming the path for anything unreadable.

    A missing file, a folder, a file that is not text (binary, another encoding), invalid YAML
    and a document that is not a mapping each end in one ``<path>: <problem>`` message.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a YAML config file (e.g. configs/synthetic_demo.yaml)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise ConfigError(f"{path}: not a text file (a YAML config was expected)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (a YAML config was expected)") from None
    try:
        raw = parse_yaml(text)
    except YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({_first_line(exc)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections {'/'.join(_SECTIONS)}, got {type(raw).__name__}")
    return raw


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict of primitives (tuples become lists), safe for YAML, JSON and checkpoints,
    with the config format's ``version`` first."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {"version": CONFIG_VERSION, **plain(asdict(config))}


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML, atomically."""
    write_text(path, config_to_yaml(config))


def _replace(obj: Any, changes: dict[str, Any]) -> Any:
    values = {}
    for key, value in changes.items():
        part = getattr(obj, key, None)
        values[key] = _replace(part, value) if isinstance(value, dict) and dataclasses.is_dataclass(part) else value
    return dataclasses.replace(obj, **values)


def replace(config: Config, **sections: Any) -> Config:
    """``dataclasses.replace`` for nested sections and their parts: ``replace(cfg, train={"lr": 0.1},
    model={"head": {"hidden": 64}})``; model keys of config format 1 (``{"gru_hidden": 64}``) are
    read as :func:`apply_overrides` reads them. Values are not checked (``config_from_dict`` does)."""
    updated = {}
    for name, changes in sections.items():
        changes = _model_changes(changes) if name == "model" else changes
        updated[name] = _replace(getattr(config, name), changes)
    return dataclasses.replace(config, **updated)
