"""Helpers for the PyTorch parity tests."""
import copy

import torch

from jaxhw.torch_bridge.convert import variables_from_torch
from jaxhw.torch_bridge.twins import images_from_torch, images_to_torch  # noqa: F401  (the tests' one conversion)


def torch_grads_as_flax(net: torch.nn.Module, model, sample_input) -> dict:
    """The .grad of every torch parameter, laid out as the Flax model's params (via the bridge)."""
    holder = copy.deepcopy(net)
    with torch.no_grad():
        for target, source in zip(holder.parameters(), net.parameters()):
            target.copy_(source.grad)
    return variables_from_torch(holder, model, sample_input)["params"]
