"""The homework's classifier: nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jaxhw.models.layers import dense


class MLP(nn.Module):
    """Flatten, then Linear+ReLU per hidden size, then a Linear to the class logits (no softmax).

    Layers: ``hidden0``, ``hidden1``, ..., ``logits``.
    """

    hidden: Sequence[int] = (64,)
    num_classes: int = 10
    weight_init: str = "flax"  # "flax" or "torch" (PyTorch's default initialisation)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batchnorm: train and eval behave the same
        x = x.reshape((x.shape[0], -1))  # nn.Flatten()
        for index, width in enumerate(self.hidden):
            x = nn.relu(dense(width, x.shape[-1], self.weight_init, name=f"hidden{index}")(x))
        return dense(self.num_classes, x.shape[-1], self.weight_init, name="logits")(x)
