"""Layer constructors shared by the models: Flax's default initialisation or PyTorch's.

PyTorch initialises Linear and Conv weights with kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in),
1/sqrt(fan_in)), and biases with the same bound. Flax uses lecun_normal weights and zero biases.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import numpy as np

INITS = ("flax", "torch")

# kaiming_uniform(a=sqrt(5)): gain^2 = 2 / (1 + 5) = 1/3, bound = sqrt(3 * (1/3) / fan_in) = 1/sqrt(fan_in).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int):
    """PyTorch's bias initialiser: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jax.numpy.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def check_init(init: str) -> None:
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")


def dense(features: int, fan_in: int, init: str = "flax", name: str | None = None) -> nn.Dense:
    """nn.Dense with Flax's or PyTorch's default initialisation (the counterpart of nn.Linear)."""
    check_init(init)
    if init == "torch":
        return nn.Dense(features, kernel_init=torch_kernel_init, bias_init=torch_bias_init(fan_in), name=name)
    return nn.Dense(features, name=name)


def conv(features: int, kernel_size: Sequence[int], in_features: int, init: str = "flax",
         padding="SAME", name: str | None = None) -> nn.Conv:
    """nn.Conv with Flax's or PyTorch's default initialisation (the counterpart of nn.Conv1d/2d)."""
    check_init(init)
    kernel_size = tuple(kernel_size)
    if init == "torch":
        fan_in = int(np.prod(kernel_size)) * in_features
        return nn.Conv(features, kernel_size, padding=padding, kernel_init=torch_kernel_init,
                       bias_init=torch_bias_init(fan_in), name=name)
    return nn.Conv(features, kernel_size, padding=padding, name=name)
