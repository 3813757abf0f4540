"""Helpers for the PyTorch parity tests."""
import copy

import torch

from jaxhw.torch_bridge import variables_from_torch


def torch_grads_as_flax(net: torch.nn.Module, model, sample_input) -> dict:
    """The .grad of every torch parameter, laid out as the Flax model's params (via the bridge)."""
    holder = copy.deepcopy(net)
    with torch.no_grad():
        for target, source in zip(holder.parameters(), net.parameters()):
            target.copy_(source.grad)
    return variables_from_torch(holder, model, sample_input)["params"]


def nhwc_to_torch(x):
    """uint8 or float NHWC images -> float NCHW in [0, 1] for uint8 (what ToTensor gives)."""
    t = torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2)
    return t / 255 if x.dtype.kind == "u" else t
