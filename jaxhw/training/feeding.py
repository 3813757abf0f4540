"""The input pipeline of a mesh that spans several processes: each process feeds its own slice of every batch.

Every process holds the whole data set in host memory and draws each epoch's order from the run's key, as
``fit`` does on one process (the same permutation, computed by the same function). From that order it builds
the epoch's batches as global arrays ``(steps, batch, ...)`` split over the mesh on the batch axis, gathering
only the rows its own devices hold (``jax.make_array_from_callback``): no process places or sends another
process's examples.

A jax.Array cannot be split unevenly, so every batch is padded with zeros at its end to a multiple of the
number of devices; the jitted epoch cuts the padding off (``FedBatches.unpadded``) before the batch reaches the
model, and XLA then splits the true batch unevenly, as it does on one process. N processes with one device each
therefore compute what one process with N devices computes, partial last batch included.
"""
from __future__ import annotations

from typing import Mapping

import flax.struct
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxhw.data.loader import epoch_indices
from jaxhw.training.parallel import BATCH_AXIS
from jaxhw.training.steps import eval_batch_size, over_members, shuffle_key

PADDING = -1  # the example index of a padding row in an index table


@flax.struct.dataclass
class FedBatches:
    """One pass over a data set as global arrays: ``full`` {name: (steps, padded batch, ...)}, ``rest`` the last
    partial batch {name: (padded size, ...)} or None; with members each has a leading axis K."""

    full: dict
    rest: dict | None
    batch_size: int = flax.struct.field(pytree_node=False)
    rest_size: int = flax.struct.field(pytree_node=False)

    def unpadded(self) -> tuple[dict, dict | None]:
        """Inside jit (and vmap over members): the full batches and the partial one at their true sizes."""
        full = {name: values[:, :self.batch_size] for name, values in self.full.items()}
        rest = None if self.rest is None else {name: values[:self.rest_size] for name, values in self.rest.items()}
        return full, rest


def padded_table(order: np.ndarray, multiple: int) -> np.ndarray:
    """Index batches (..., size) padded with PADDING to (..., size rounded up to ``multiple``)."""
    padding = -order.shape[-1] % multiple
    return np.pad(order, [(0, 0)] * (order.ndim - 1) + [(0, padding)], constant_values=PADDING)


def gather_global(values: np.ndarray, table: np.ndarray, sharding: NamedSharding, per_member: bool) -> jax.Array:
    """The global array ``values[table]`` (zero rows where the table holds PADDING), placed as ``sharding`` says:
    this process gathers only the rows its own devices hold. ``per_member``: values is (K, N, ...) and the
    table's first axis is K, member k's rows coming from values[k]."""
    features = values.shape[2:] if per_member else values.shape[1:]

    def rows(index: tuple[slice, ...]) -> np.ndarray:
        lead = table[index[:table.ndim]]
        examples = np.maximum(lead, 0)
        if per_member:
            members = np.arange(table.shape[0])[index[0]].reshape((-1,) + (1,) * (lead.ndim - 1))
            gathered = values[members, examples]
        else:
            gathered = values[examples]
        gathered[lead == PADDING] = 0
        return gathered

    return jax.make_array_from_callback(table.shape + features, sharding, rows)


class HostFeed:
    """``fit``'s batches over a mesh that spans processes: each epoch's training batches, and an evaluation's.

    ``rng`` is the run's key (K keys for a stack of members) and ``train`` the training set, both held by this
    process. ``by_member``: the members are split over the devices and each device gets its members' whole
    batches; otherwise every batch is split. ``data_per_member``: the data sets are stacked per member on a
    leading axis K.
    """

    def __init__(self, mesh: Mesh, rng: jax.Array, train: Mapping[str, np.ndarray], *, batch_size: int,
                 drop_last: bool, members: bool, by_member: bool, data_per_member: bool):
        self.mesh, self.train = mesh, {name: np.asarray(values) for name, values in train.items()}
        self.key_data = np.asarray(jax.random.key_data(rng))  # a copy: the state's own key is donated by the epochs
        self.members, self.by_member, self.data_per_member = members, by_member, data_per_member
        self.multiple = 1 if by_member else mesh.size  # a batch split over the devices is padded to this
        num_train = self._num_examples(self.train)

        def order(key_data, epoch):
            key = jax.random.wrap_key_data(key_data)
            return epoch_indices(shuffle_key(key, epoch), num_train, batch_size, True, drop_last)

        self._order = jax.jit(over_members(order, members, False))

    def _num_examples(self, data: Mapping[str, np.ndarray]) -> int:
        return np.shape(next(iter(data.values())))[1 if self.data_per_member else 0]

    def _sharding(self, table: np.ndarray, member_axis: bool) -> NamedSharding:
        if self.by_member:  # a member's batches go whole to the device that trains it; shared data to all
            return NamedSharding(self.mesh, PartitionSpec(BATCH_AXIS) if member_axis else PartitionSpec())
        return NamedSharding(self.mesh, PartitionSpec(*[None] * (table.ndim - 1), BATCH_AXIS))

    def _batches(self, data: Mapping[str, np.ndarray], full: np.ndarray, rest: np.ndarray | None,
                 member_axis: bool) -> FedBatches:
        def place(order):
            table = padded_table(order, self.multiple)
            sharding = self._sharding(table, member_axis)
            return {name: gather_global(np.asarray(values), table, sharding, self.data_per_member)
                    for name, values in data.items()}

        return FedBatches(place(full), None if rest is None else place(rest), batch_size=full.shape[-1],
                          rest_size=0 if rest is None else rest.shape[-1])

    def epoch(self, epoch: int) -> FedBatches:
        """The training batches of ``epoch`` in the order fit draws from the key (one order per member)."""
        full, rest = jax.device_get(self._order(self.key_data, epoch))
        return self._batches(self.train, full, rest, member_axis=self.members)

    def evaluation(self, data: Mapping[str, np.ndarray]) -> FedBatches:
        """A data set in order, in the batches ``make_eval_fn`` takes (the order repeated per member when each
        member has its own data)."""
        num_examples = self._num_examples(data)
        members = self.key_data.shape[0] if self.members else 1
        full, rest = jax.device_get(epoch_indices(None, num_examples, eval_batch_size(num_examples, members), False))
        if self.data_per_member:
            count = np.shape(next(iter(data.values())))[0]
            full = np.broadcast_to(full, (count,) + full.shape)
            rest = None if rest is None else np.broadcast_to(rest, (count,) + rest.shape)
        return self._batches(data, full, rest, member_axis=self.data_per_member)
