"""Run configuration: three dataclasses <-> YAML, with ``key=value`` overrides.

A config file has up to four sections, ``data``, ``model``, ``train`` and ``synth`` (the synthetic
set `tdrag demo` renders), each mapping to the dataclass of the same name. Every field has a default, so a file names only what it changes. Overrides from
the command line use ``section.field=value`` (or a bare ``field=value`` when the name is unique
across sections); values are parsed as YAML scalars/lists and type-checked against the field.

Example::

    cfg = load_config("configs/dfew_tdrag.yaml", ["train.lr=0.05", "fold=2"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tdrag.atomic import write_text


@dataclass
class DataConfig:
    """Where the clips are and how they are sampled."""

    # DFEW-format root (holds Clip/ and EmoLabel_DataSplit/); `tdrag prepare` reads it.
    root: str = ""
    # Frame cache directory written by `tdrag prepare` and read for training.
    cache: str = ""
    # DFEW fold 1..5: train on train(single-labeled)/set_<fold>.csv, test on test(...)/set_<fold>.csv.
    fold: int = 1
    # Keyframes per clip (T) and side of the square cached frames (S).
    frames: int = 16
    size: int = 128
    # Side of the network input after the (random or centre) crop of the cached frames.
    crop: int = 112
    # Keyframe selection: "redundancy" (TDRAG) or "uniform" (the usual baseline sampling).
    keyframes: str = "redundancy"
    # Random resized crop: range of the crop's area relative to the cached frame.
    crop_scale: tuple[float, float] = (0.6, 1.0)
    # Random horizontal flip during training.
    flip: bool = True
    # Share of the training fold held out for model selection (0 = select on the test fold,
    # which is optimistic and labelled as such in the report).
    val_fraction: float = 0.0
    # DataLoader worker processes (the cache is memory-mapped, so few are needed).
    num_workers: int = 2


@dataclass
class ModelConfig:
    """Which network, and the choices the TDRAG paper leaves open."""

    # "r3d18" | "tdrag" | "tdrag_no_attention" | "tdrag_no_gru".
    name: str = "tdrag"
    num_classes: int = 7
    # Channels of the first stage; stages have width * (1, 2, 4, 8). 64 is r3d_18; 16 fits a CPU.
    width: int = 64
    # Temporal stride of stages 1..4. r3d_18 uses (1, 2, 2, 2), which leaves 2 steps of 16 for a
    # GRU; TDRAG's default keeps T/2 = 8 steps. The r3d18 variant always uses r3d_18's strides.
    temporal_strides: tuple[int, int, int, int] = (1, 2, 1, 1)
    # Stages (1..4) followed by a 3D residual attention block.
    attention_stages: tuple[int, ...] = (2, 3, 4)
    # GRU over the per-step pooled features.
    gru_hidden: int = 256
    gru_layers: int = 1
    # Dropout before the classifier.
    dropout: float = 0.5


@dataclass
class TrainConfig:
    """Optimisation, precision and bookkeeping."""

    # Run directory: config.yaml, log.csv, checkpoints/, predictions.csv, report/.
    run_dir: str = "runs/tdrag"
    epochs: int = 100
    batch_size: int = 32
    # "sgd" (momentum, as in most DFER codebases) or "adamw".
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # "cosine" or "step" (multiply by step_gamma every step_epochs), after warmup_epochs of
    # linear warm-up.
    schedule: str = "cosine"
    warmup_epochs: int = 0
    step_epochs: int = 40
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    # Clip the gradient's global norm to this value (0 = off).
    grad_clip: float = 0.0
    # CUDA only: bf16 autocast, channels_last_3d memory format, torch.compile.
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    seed: int = 0
    # Evaluate on the test (and validation) split every this many epochs, and after the last.
    eval_every: int = 1


@dataclass
class SynthConfig:
    """The synthetic DFEW-format set `tdrag demo` renders (ignored by `tdrag train`)."""

    # Number of clips, split into train/test by `tdrag.data.synthetic.generate_dataset`.
    clips: int = 280
    # "easy" (a tiny model learns it on a CPU in minutes) or "hard".
    preset: str = "easy"
    # Named apart from train.seed / data.size so that bare `seed=` / `size=` overrides stay unique.
    render_seed: int = 0
    # Side of the rendered frames in pixels.
    render_size: int = 112


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "synth": SynthConfig}


class ConfigError(ValueError):
    """A config file or override names an unknown key or gives a value of the wrong type."""


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
        return float(value)
    if annotation is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported field type {annotation!r}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def config_from_dict(raw: dict[str, Any] | None, source: str = "config") -> Config:
    """Build a Config from nested dicts (as read from YAML), checking keys and types."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with sections {'/'.join(_SECTIONS)}")
    sections = {}
    for name, cls in _SECTIONS.items():
        values = raw.get(name) or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section '{name}' must be a mapping")
        types = _field_types(cls)
        kwargs = {}
        for key, value in values.items():
            if key not in types:
                raise ConfigError(f"{source}: unknown key '{name}.{key}' (known: {', '.join(types)})")
            kwargs[key] = _check_value(f"{name}.{key}", value, types[key])
        sections[name] = cls(**kwargs)
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)} (known: {', '.join(_SECTIONS)})")
    return Config(**sections)


def apply_overrides(config: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a copy of ``config`` with ``section.field=value`` (or unique ``field=value``) applied."""
    raw = asdict(config)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if "." in key:
            section, name = key.split(".", 1)
            if section not in _SECTIONS or name not in raw[section]:
                raise ConfigError(f"override {item!r}: unknown key '{key}'")
        else:
            owners = [s for s in _SECTIONS if key in raw[s]]
            if len(owners) != 1:
                what = "unknown" if not owners else f"ambiguous (in {', '.join(owners)})"
                raise ConfigError(f"override {item!r}: key '{key}' is {what}; use section.field")
            section, name = owners[0], key
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: cannot parse value ({exc})") from None
        raw[section][name] = value
    return config_from_dict(raw, source="overrides")


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides."""
    if path is None:
        config = Config()
    else:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        config = config_from_dict(raw, source=str(path))
    return apply_overrides(config, overrides)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain nested dict of primitives (tuples become lists), safe for YAML, JSON and checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(asdict(config))


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write ``config`` as YAML, atomically."""
    write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def replace(config: Config, **sections: Any) -> Config:
    """``dataclasses.replace`` for nested sections: ``replace(cfg, train={"lr": 0.1})``."""
    updated = {}
    for name, changes in sections.items():
        updated[name] = dataclasses.replace(getattr(config, name), **changes)
    return dataclasses.replace(config, **updated)
