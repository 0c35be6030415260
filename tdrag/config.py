"""Run configuration: three dataclasses <-> YAML, with ``key=value`` overrides.

A config file has up to four sections, ``data``, ``model``, ``train`` and ``synth`` (the synthetic
set `tdrag demo` renders), each mapping to the dataclass of the same name. Every field has a
default, so a file names only what it changes. Overrides from the command line use
``section.field=value`` (or a bare ``field=value`` when the name is unique across sections).

Values are read as YAML 1.2 (ruamel.yaml's safe loader: ``1e-3`` is a float, ``yes`` is a
string, as opposed to YAML 1.1, where ``1e-3`` is a string and ``yes`` a boolean), type-checked
against the field and range-checked (``train.lr`` > 0, ``data.crop`` <= ``data.size``, ...): a bad
value raises ``ConfigError`` naming the key, before any work starts. The fields that take one of a
few names list them in :data:`CHOICES`, each the registry of the module that implements it.

Example::

    cfg = load_config("configs/dfew_tdrag.yaml", ["train.lr=0.05", "fold=2"])
    save_config(cfg, "runs/x/config.yaml")
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from tdrag.atomic import write_text
from tdrag.errors import TdragError


@dataclass
class DataConfig:
    """Where the clips are and how they are sampled."""

    # Which dataset layout `root` holds: "dfew", "ferv39k" or "mafw" (see tdrag.data.datasets).
    dataset: str = "dfew"
    # Dataset root as distributed (DFEW: holds Clip/ and EmoLabel_DataSplit/); `tdrag prepare` reads it.
    root: str = ""
    # Frame cache directory written by `tdrag prepare` and read for training.
    cache: str = ""
    # Fold of the dataset's protocol: DFEW and MAFW 1..5 (train on set_<fold>, test on its test
    # list); FERV39k has one train/test split, fold 1.
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

    # "r3d18" | "tdrag" | "tdrag_no_attention" | "tdrag_no_gru" | "tdrag_trunk" (TDRAG's backbone and
    # temporal strides with a pooled head, no attention, no GRU).
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
    # Causal time: every temporal convolution and pooling pads only the past, so GRU step s (and
    # its logits) depends only on the keyframes up to the last one that step covers. Off: each
    # step of layer4 already sees the whole clip (centred 3x3x3 kernels), and step readouts are
    # not "the clip so far".
    causal_time: bool = False
    # How the attention mask M is formed from its logits (tdrag.models.attention):
    # "sigmoid": M = sigmoid(logits) in (0, 1) (the residual attention of Wang et al.);
    # "softmax": a spatial softmax per time step at `attention_temperature`, rescaled so that
    # its mean over the frame is 0.5 (the same average gain as a fresh sigmoid mask), which makes
    # the mask a distribution over places: more on one place means less elsewhere.
    attention_mask: str = "sigmoid"
    attention_temperature: float = 1.0
    # Residual attention x * (1 + M) (true: a useless mask cannot erase features) or a plain gate
    # x * M (false).
    attention_residual: bool = True
    # Layer4's map weights the head's spatial pooling instead of re-weighting layer4's features,
    # so the map is the evidence the classifier reads (needs 4 in attention_stages).
    attention_pooling: bool = False
    # Learn the attention blocks' temperature (log tau per block, starting at
    # attention_temperature), dividing the mask logits of either mask function.
    attention_learn_temperature: bool = False
    # The temporal head (tdrag.models.gru_head). The defaults were chosen on the validation split
    # of the medium benchmark over 3 paired seeds (benchmarks/RESULTS.md, "The temporal head"):
    # without the pooled path the head does not train; orthogonal init, another readout or a
    # bidirectional GRU did not do better.
    # Input normalisation of each step's pooled features before the GRU: "none" or "layernorm".
    gru_input_norm: str = "layernorm"
    # How the step logits become the clip's: "last" step, "mean" over steps, or "attention"
    # (learned softmax weights over steps).
    gru_readout: str = "mean"
    # A pooled path beside the GRU whose GRU branch starts at zero (TDRAG starts as tdrag_no_gru
    # and the GRU adds to it); the branch can be switched off at test time to measure it
    # (tdrag.models.gru_head.gru_branch_off).
    gru_residual: bool = True
    # GRU weight init: "pytorch" (nn.GRU's uniform) or "orthogonal" (orthogonal recurrent,
    # Xavier input, zero biases).
    gru_init: str = "pytorch"
    gru_bidirectional: bool = False
    # Branch dropout of the residual head's GRU branch (stochastic depth): in training, each clip
    # keeps the branch with probability 1 - p (scaled by 1 / (1 - p)) and otherwise reads the pooled
    # path alone, so the pooled path must classify by itself and the GRU can only add to it. 0: off.
    # Without gru_residual there is no branch to drop, and it does nothing.
    # 0.5 was chosen on the validation split over 0, 0.25 and 0.75 (benchmarks/RESULTS.md, "GRU
    # branch dropout").
    gru_branch_dropout: float = 0.5
    # Initial weights for the trunk: "" (none), a path to a torchvision r3d_18 state dict or a
    # tdrag checkpoint, or "kinetics400" (torchvision downloads its weights; needs internet).
    pretrained: str = ""


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
    # Per-step supervision of a GRU model: "last" (the loss on the last step's logits only),
    # "mean" (the loss averaged over every step's logits) or "linear" (averaged with weights
    # 1..S rising toward later steps). With "mean" / "linear" the intermediate readouts are
    # trained predictions. Ignored by models without a GRU.
    step_loss: str = "last"
    # A penalty on the attention masks M, averaged over stages: "none", "l1" (mean of M: fewer,
    # smaller attended regions) or "entropy" (mean spatial entropy of M normalised per time
    # step: peaked rather than flat maps); weighted by attention_penalty_weight. The default
    # (l1, 0.1) was chosen on the medium synthetic set: of the designs tried it localised best
    # and cost no accuracy (benchmarks/RESULTS.md, "Design choices").
    attention_penalty: str = "l1"
    attention_penalty_weight: float = 0.1
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
    # "easy" (a tiny model learns it on a CPU in minutes), "medium" (the CPU benchmark), "order"
    # (an order-only pair: the temporal head's rung) or "hard" (GPU scale); see
    # tdrag.data.synthetic.presets.
    preset: str = "easy"
    # Named apart from train.seed / data.size so that bare `seed=` / `size=` overrides stay unique.
    render_seed: int = 0
    # Side of the rendered frames in pixels.
    render_size: int = 112
    # Layout the set is written in: "dfew", "ferv39k" or "mafw" (class list and split files of
    # that dataset).
    layout: str = "dfew"


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)


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
            try:
                kwargs[key] = _check_value(f"{name}.{key}", value, types[key])
            except ConfigError as exc:
                raise ConfigError(_in_source(str(exc), source)) from None
        sections[name] = cls(**kwargs)
    unknown = set(raw) - set(_SECTIONS)
    if unknown:
        raise ConfigError(f"{source}: unknown section(s) {sorted(unknown)} (known: {', '.join(_SECTIONS)})")
    config = Config(**sections)
    validate(config, source)
    return config


#: The device strings tdrag accepts (``train.device``, ``--device``); tdrag.runtime resolves them.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")

#: The names each choice field accepts, checked here before any work starts. Each tuple is the
#: registry of the module that implements the choice (named beside it), in that registry's
#: order. config is the ground floor and cannot import those modules, so
#: ``tests/test_config.py::REGISTRIES`` ties every entry to its registry: a name added to one and
#: not the other fails there. A new choice field: its names here, its implementation's registry
#: (a tuple, or a dict by name) in its module, and the pair in REGISTRIES.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.dataset": ("dfew", "ferv39k", "mafw"),                  # tdrag.data.datasets.READERS
    "data.keyframes": ("redundancy", "uniform", "redundancy_greedy"),  # tdrag.data.keyframes.KEYFRAME_METHODS
    # tdrag.models.registry.MODEL_NAMES:
    "model.name": ("r3d18", "tdrag", "tdrag_no_attention", "tdrag_no_gru", "tdrag_trunk"),
    "model.attention_mask": ("sigmoid", "softmax"),               # tdrag.models.attention.MASK_KINDS
    "model.gru_input_norm": ("none", "layernorm"),                # tdrag.models.gru_head.INPUT_NORMS
    "model.gru_readout": ("last", "mean", "attention"),           # tdrag.models.gru_head.READOUTS
    "model.gru_init": ("pytorch", "orthogonal"),                  # tdrag.models.gru_head.GRU_INITS
    "train.optimizer": ("sgd", "adamw"),                          # tdrag.train.schedule.OPTIMIZERS
    "train.schedule": ("cosine", "step"),                         # tdrag.train.schedule.SCHEDULES
    "train.step_loss": ("last", "mean", "linear"),                # tdrag.train.losses.STEP_LOSSES
    "train.attention_penalty": ("none", "l1", "entropy"),         # tdrag.train.losses.ATTENTION_PENALTIES
    "synth.preset": ("easy", "medium", "hard", "order"),          # tdrag.data.synthetic.presets.PRESETS
    "synth.layout": ("dfew", "ferv39k", "mafw"),                  # tdrag.data.synthetic.layouts.LAYOUTS
}


def validate(config: Config, source: str = "config") -> None:
    """Check the values' ranges and choices; raise ConfigError naming the first bad key.

    Only what can be decided from the config alone is checked here (``data.crop`` against the
    cache's frame size, for example, is checked when the cache is opened).
    """
    d, m, t, s = config.data, config.model, config.train, config.synth

    def fail(key: str, problem: str) -> None:
        raise ConfigError(_in_source(f"{key}: {problem}", source))

    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in allowed:
            fail(key, f"{value!r} is not one of {', '.join(allowed)}")
    positive = {
        "data.fold": d.fold, "data.frames": d.frames, "data.size": d.size, "data.crop": d.crop,
        "model.num_classes": m.num_classes, "model.width": m.width, "model.gru_hidden": m.gru_hidden,
        "model.gru_layers": m.gru_layers, "train.epochs": t.epochs, "train.batch_size": t.batch_size,
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
    if any(v < 1 for v in m.temporal_strides):
        fail("model.temporal_strides", f"expected 4 positive integers, got {list(m.temporal_strides)}")
    if any(not 1 <= v <= 4 for v in m.attention_stages) or len(set(m.attention_stages)) != len(m.attention_stages):
        fail("model.attention_stages", f"expected distinct stage numbers in 1..4, got {list(m.attention_stages)}")
    if not 0.0 <= m.dropout < 1.0:
        fail("model.dropout", f"must be in [0, 1), got {m.dropout}")
    if not 0.0 <= m.gru_branch_dropout < 1.0:
        fail("model.gru_branch_dropout", f"must be in [0, 1), got {m.gru_branch_dropout}")
    if m.attention_temperature <= 0:
        fail("model.attention_temperature", f"must be > 0, got {m.attention_temperature}")
    if m.attention_pooling and 4 not in m.attention_stages and m.name in ("tdrag", "tdrag_no_gru"):
        fail("model.attention_pooling", f"needs stage 4 in model.attention_stages, got {list(m.attention_stages)}")
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
            value = parse_yaml(text) if text.strip() else ""
        except YAMLError as exc:
            raise ConfigError(f"{key}: cannot parse the value {text!r} ({_first_line(exc)})") from None
        raw[section][name] = value
    return config_from_dict(raw, source="overrides")


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
    write_text(path, config_to_yaml(config))


def replace(config: Config, **sections: Any) -> Config:
    """``dataclasses.replace`` for nested sections: ``replace(cfg, train={"lr": 0.1})``."""
    updated = {}
    for name, changes in sections.items():
        updated[name] = dataclasses.replace(getattr(config, name), **changes)
    return dataclasses.replace(config, **updated)
