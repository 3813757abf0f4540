"""A CNN classifier for 28x28x1 images: two conv blocks (Conv, BatchNorm, ReLU, 2x2 max-pool), Dropout, dense head.

Its PyTorch twin is
    nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                  nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25),
                  nn.Linear(128, 10))
and ``jaxhw.torch_bridge`` maps its weights one to one.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jaxhw.models.layers import apply_batch_norm, batch_norm, conv, dense, max_pool_2x2


class CNN(nn.Module):
    """Conv blocks with BatchNorm, then Dropout and a dense head; ``train`` switches both layers' behaviour.

    Layers: ``conv0``, ``norm0``, ``conv1``, ``norm1``, ..., ``hidden``, ``logits``.
    """

    channels: Sequence[int] = (16, 32)
    hidden: int = 128
    num_classes: int = 10
    dropout: float = 0.25
    batchnorm: str = "torch"  # "torch" (PyTorch-exact running statistics) or "flax"
    weight_init: str = "flax"
    conv_implementation: str = "auto"  # see jaxhw.models.layers.Conv; the parameters do not depend on it

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for index, features in enumerate(self.channels):
            x = conv(features, (3, 3), x.shape[-1], self.weight_init, implementation=self.conv_implementation,
                     name=f"conv{index}")(x)
            x = nn.relu(apply_batch_norm(batch_norm(self.batchnorm, name=f"norm{index}"), x, train))
            x = max_pool_2x2(x)
        # Flatten in PyTorch's channel-first order so a torch Linear's weights map without permutation.
        x = x.transpose(0, 3, 1, 2).reshape((x.shape[0], -1))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.relu(dense(self.hidden, x.shape[-1], self.weight_init, name="hidden")(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return dense(self.num_classes, x.shape[-1], self.weight_init, name="logits")(x)
