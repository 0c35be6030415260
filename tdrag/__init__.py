"""tdrag: dynamic facial expression recognition with TDRAG (redundancy keyframes -> 3D ResNet-18
with 3D residual attention -> GRU), DFEW reading, training and evaluation.

The package needs only torch, numpy, opencv, pyyaml and tqdm; inspection and plotting live in the
separate ``analysis`` package.
"""

__version__ = "0.1.0"
