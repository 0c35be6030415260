"""The two context managers the attribution code wraps around Captum calls (eval mode itself is
``tdrag.runtime.eval_mode``, the one used everywhere).

- :func:`cudnn_off_for_rnns`: cuDNN refuses an RNN's backward pass in eval mode ("cudnn RNN
  backward can only be called in training mode"). Gradient attributions of a GRU model on a GPU
  therefore run each RNN module's forward with cuDNN off (PyTorch's native GRU kernels, whose
  backward needs no cuDNN), and nothing else: the 3D convolutions keep cuDNN in both directions
  (without it they fall back to far slower kernels). On the CPU, or for a model without RNN
  modules, it does nothing.
- :func:`relus_not_inplace`: guided backpropagation hooks ``nn.ReLU`` modules; an in-place ReLU
  overwrites the tensor the hook was registered on, so we make every ReLU out-of-place for the
  duration of the call and restore the flag after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def cudnn_off_for_rnns(model: nn.Module, device: torch.device | str) -> Iterator[None]:
    """Inside the body, on CUDA, run every ``nn.RNNBase`` (GRU, LSTM, RNN) of ``model`` with
    cuDNN disabled during its forward; the global flag is restored after each RNN call and,
    whatever happens, when the body exits. A no-op on the CPU or without RNN modules."""
    rnns = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    if torch.device(device).type != "cuda" or not rnns:
        yield
        return
    saved = torch.backends.cudnn.enabled
    state: list[bool] = []

    def pre_hook(module, args):
        state.append(torch.backends.cudnn.enabled)
        torch.backends.cudnn.enabled = False

    def post_hook(module, args, output):
        torch.backends.cudnn.enabled = state.pop() if state else saved

    handles = []
    try:
        for rnn in rnns:
            handles.append(rnn.register_forward_pre_hook(pre_hook))
            handles.append(rnn.register_forward_hook(post_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
        torch.backends.cudnn.enabled = saved


@contextlib.contextmanager
def relus_not_inplace(model: nn.Module) -> Iterator[nn.Module]:
    """Make every ``nn.ReLU`` in ``model`` out-of-place inside the body (restored after)."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU) and m.inplace]
    for relu in relus:
        relu.inplace = False
    try:
        yield model
    finally:
        for relu in relus:
            relu.inplace = True
