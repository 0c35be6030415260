"""The configuration's sections: one commented dataclass per section of a config file, every field's
default written once, here (nanoGPT's config style).

``data``, ``model`` (with its parts ``model.attention`` and ``model.head``), ``train`` and
``synth``: :mod:`tdrag.config` reads them from YAML, checks their values and applies overrides;
``tdrag.config`` re-exports every class here, so ``from tdrag.config import ModelConfig`` reads as
before.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
class AttentionConfig:
    """TDRAG's 3D residual attention blocks (tdrag.models.tdrag, "Attention")."""

    # The block's design, by name (tdrag.models.tdrag.ATTENTIONS). "residual" (chosen): a
    # sigmoid mask M per time step, the stage's output x * (1 + M), so a useless mask cannot erase
    # features. Kept for comparison, each changing one thing of it and joined with "+"
    # ("softmax+pooling"): "softmax" (a spatial softmax per step divided by its peak: places
    # compete), "gate" (x * M, no residual floor), "pooling" (layer4's map weights the head's
    # spatial pooling instead of re-weighting layer4), "learned_temperature" (tau is learned).
    # None did better (benchmarks/RESULTS.md, "Design choices" and "What was tried").
    design: str = "residual"
    # Stages (1..4) followed by an attention block.
    stages: tuple[int, ...] = (2, 3, 4)
    # Temperature tau dividing the mask logits (the starting value of "learned_temperature").
    temperature: float = 1.0


@dataclass
class HeadConfig:
    """The temporal head (tdrag.models.tdrag, "Temporal head"; the pooled head of tdrag_no_gru /
    tdrag_trunk reads only ``dropout``)."""

    # The head's design, by name (tdrag.models.tdrag.HEADS). "gru" (chosen): LayerNorm on each
    # step's pooled features -> GRU, a pooled path beside it whose GRU branch starts at zero (TDRAG
    # starts as tdrag_no_gru and the GRU adds to it), the classifier on every step, the mean over
    # steps. Chosen on the validation split of the medium benchmark over 3 paired seeds
    # (benchmarks/RESULTS.md, "Temporal head designs"): without the pooled path the head does not
    # train; the others did not do better. Kept for comparison, each changing one thing and joined
    # with "+" ("no_norm+last_step+no_pooled_path" is the first head): "last_step" (the last step's
    # logits), "attention_readout" (learned softmax weights over steps), "orthogonal" (orthogonal
    # recurrent init), "bidirectional", "no_norm" (raw pooled features), "no_pooled_path" (the
    # classifier reads the GRU state alone).
    design: str = "gru"
    # GRU hidden units (per direction) and stacked layers.
    hidden: int = 256
    layers: int = 1
    # Dropout before the classifier.
    dropout: float = 0.5
    # Branch dropout (stochastic depth) of the GRU branch: in training each clip keeps it with
    # probability 1 - p (scaled by 1 / (1 - p)) and otherwise reads the pooled path alone, so the
    # pooled path must classify by itself and the GRU can only add to it. 0: off; nothing to drop
    # without the pooled path. 0.5 was chosen on the validation split over 0, 0.25 and 0.75
    # (benchmarks/RESULTS.md, "GRU branch dropout").
    branch_dropout: float = 0.5


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
    # Causal time: every temporal convolution and pooling pads only the past, so GRU step s (and
    # its logits) depends only on the keyframes up to the last one that step covers. Off: each
    # step of layer4 already sees the whole clip (centred 3x3x3 kernels), and step readouts are
    # not "the clip so far".
    causal_time: bool = False
    # Local time: every temporal convolution reads only the keyframes of its own step (kernel 1, or
    # the stride's length where a stage strides time), so layer4's step s covers its own keyframes
    # alone and only the temporal head combines steps (the order is the GRU's to read). Off: 3x3x3
    # kernels read order already in the trunk. Not with causal_time.
    local_time: bool = False
    # The attention blocks (variants with attention) and the classifier head.
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
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
