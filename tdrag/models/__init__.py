"""TDRAG and its baselines: the chosen model in one file (``tdrag``: its trunk layout, attention
block and temporal head), r3d_18's building blocks (``resnet3d``), the designs kept for comparison
(``attention_designs``, ``head_designs``; imported here so that their names are registered), a
design name -> its class (``designs``), pretrained trunks (``pretrained``), what ``model.inspect``
returns (``inspection``), building or loading a model by name (``registry``) and the one loop that
runs a model over clips (``forward``).
"""

from tdrag.models import attention_designs, head_designs  # noqa: F401  (registers the designs by name)
