"""What ``model.inspect(x)`` returns: the logits plus the internals the analysis side looks at."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelInspection:
    """One forward pass, opened up.

    Fields (B clips, C classes):
        logits: (B, C), the same values ``model(x)`` returns.
        attention: stage name ("layer2", "layer3", ...) -> spatial attention map
            (B, 1, T', H', W') in [0, 1] (float32), at that stage's output resolution.
            Empty for models without attention.
        hidden_states: (B, T_gru, hidden), the last GRU layer's output after each time step;
            None without a GRU.
        step_logits: (B, T_gru, C), the classifier applied to each hidden state;
            ``step_logits[:, -1]`` equals ``logits``. None without a GRU. What a step readout
            means depends on the model (see ``tdrag.models.tdrag``): with ``causal_time`` step s
            depends only on the keyframes up to the last one it covers, i.e. it is what the
            model says having seen the clip up to there (a trained prediction when the run used
            ``train.step_loss`` "mean" or "linear"); without it every step has already seen the
            whole clip, so the steps show how the GRU's summary evolves, not the clip so far.
        readout_weights: (B, T_gru), the weights with which the head's readout averages the step
            logits into ``logits`` (one-hot on the last step, uniform, or learned attention over
            steps; ``logits = sum_s w_s step_logits_s``). None without a GRU.

    Tensors keep their graph (inspect does not switch off autograd), so attribution code can
    differentiate through them; call :meth:`cpu` for detached copies.
    """

    logits: torch.Tensor
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    hidden_states: torch.Tensor | None = None
    step_logits: torch.Tensor | None = None
    readout_weights: torch.Tensor | None = None

    def cpu(self) -> "ModelInspection":
        """Detached float32 copies on the CPU (for plotting, saving, numpy)."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.detach().float().cpu()

        return ModelInspection(
            logits=move(self.logits),
            attention={name: move(m) for name, m in self.attention.items()},
            hidden_states=move(self.hidden_states),
            step_logits=move(self.step_logits),
            readout_weights=move(self.readout_weights),
        )
