"""TDRAG and its baselines: the 3D ResNet trunk (``resnet3d``), residual attention (``attention``),
the GRU head (``gru_head``), a design name -> its class (``designs``), the variants (``tdrag``),
pretrained trunks (``pretrained``), what ``model.inspect`` returns (``inspection``), building or
loading a model by name (``registry``) and the one loop that runs a model over clips (``forward``).
"""
