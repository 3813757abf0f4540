"""The DataLoader counterpart: shuffle with a per-epoch seed, batch, keep or drop the last partial batch.

Two forms with the same semantics:
- ``DataLoader`` iterates host (numpy) batches, like ``torch.utils.data.DataLoader``;
- ``epoch_indices`` builds an epoch's batch indices on the device, for the jitted ``lax.scan`` epoch.
Every sample appears exactly once per epoch; the order is reproducible from (seed, epoch).
"""
from __future__ import annotations

from typing import Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.errors import InputError


def check_batching(num_examples: int, batch_size: int, drop_last: bool) -> None:
    """Raise InputError unless batch_size can batch num_examples examples."""
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if num_examples == 0:
        raise InputError("cannot batch an empty data set (0 examples)")
    if drop_last and batch_size > num_examples:
        raise InputError(f"batch_size {batch_size} is larger than the data set ({num_examples} examples) "
                         "and drop_last=True would leave no batch at all")


def num_batches(num_examples: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches per epoch, as len(DataLoader) counts them."""
    full, rest = divmod(num_examples, batch_size)
    return full + (1 if rest and not drop_last else 0)


class DataLoader:
    """Host-side batches of a dict of equally long arrays, like torch.utils.data.DataLoader.

    With shuffle=True each epoch gets a fresh permutation drawn from (seed, epoch); iterating again
    advances the epoch, as PyTorch's DataLoader reshuffles at each ``for`` loop.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int = 1, shuffle: bool = False,
                 seed: int = 0, drop_last: bool = False):
        lengths = {key: len(value) for key, value in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"all arrays must have the same length, got {lengths}")
        self.arrays = dict(arrays)
        self.num_examples = next(iter(lengths.values()))
        check_batching(self.num_examples, batch_size, drop_last)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def __len__(self) -> int:
        return num_batches(self.num_examples, self.batch_size, self.drop_last)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of one epoch."""
        if not self.shuffle:
            return np.arange(self.num_examples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        order = self.order(self.epoch)
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            yield {key: value[index] for key, value in self.arrays.items()}


def epoch_indices(key: jax.Array, num_examples: int, batch_size: int, shuffle: bool = True,
                  drop_last: bool = False) -> tuple[jax.Array, jax.Array | None]:
    """On-device batch indices for one epoch: (full batches as a (B, batch_size) array, last partial batch).

    The partial batch is None when the batch size divides the data set or when drop_last is set. Shapes are
    static, so this runs inside jit; ``key`` should differ per epoch (``jax.random.fold_in(key, epoch)``).
    """
    order = jax.random.permutation(key, num_examples) if shuffle else jnp.arange(num_examples)
    full = num_examples // batch_size
    batches = order[:full * batch_size].reshape(full, batch_size)
    rest = None if drop_last or full * batch_size == num_examples else order[full * batch_size:]
    return batches, rest
