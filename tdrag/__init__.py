"""tdrag: dynamic facial expression recognition with TDRAG (redundancy keyframes -> 3D ResNet-18
with 3D residual attention -> GRU), DFEW reading, training and evaluation.

The package needs only torch, numpy, opencv, ruamel.yaml and tqdm; inspection and plotting live
in the separate ``analysis`` package. Its folders hold its jobs: ``data`` (readers, the frame
cache, batches), ``runs`` (the files of a run directory), ``models`` (the networks, building and
loading them, the one loop over clips), ``train`` (fitting, evaluation, the k-fold protocol, the
demo), ``predict`` (a trained model on video files) and ``commands`` (the ``tdrag`` CLI), over a
ground floor of config, errors, atomic writes, ownership, runtime, distributed and metrics.
"""

__version__ = "0.1.0"
