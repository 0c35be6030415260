"""A config-format-1 model section as the last tdrag of that format wrote it (the flat model section
with design flags at their chosen values), for the tests of tdrag.config_versions and of old
checkpoints."""

V1_MODEL = {
    "name": "tdrag", "num_classes": 7, "width": 16, "temporal_strides": [1, 2, 1, 1], "attention_stages": [2, 3, 4],
    "gru_hidden": 64, "gru_layers": 1, "dropout": 0.1, "causal_time": False, "attention_mask": "sigmoid",
    "attention_temperature": 1.0, "attention_residual": True, "attention_pooling": False,
    "attention_learn_temperature": False, "gru_input_norm": "layernorm", "gru_readout": "mean", "gru_residual": True,
    "gru_init": "pytorch", "gru_bidirectional": False, "gru_branch_dropout": 0.5, "pretrained": "",
}
