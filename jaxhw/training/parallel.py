"""Data parallelism through jax.sharding: a Mesh over devices, the batch axis (or the members of an ensemble)
sharded, everything else replicated.

No hand-written all-reduce: inside the jitted step each batch is constrained to be split along its first
axis over the mesh, parameters and optimizer state are replicated, and XLA's SPMD partitioner inserts the
gradient reduction. Means over the batch (the loss, BatchNorm's batch statistics) are therefore means over
the *global* batch, as with torch.nn.SyncBatchNorm. A batch that the devices do not divide evenly (a partial
last batch, 64 examples on 3 devices) is split unevenly by XLA, which pads it inside the compiled program and
leaves the padding out of every sum and mean, so the numbers are those of one device.

Several processes (``jaxhw.training.distributed``): the mesh spans every process's devices and the same jitted
code runs in each. A process can only place arrays on its own devices, so ``place`` builds a global array from
the part each process holds, and the data is fed per process (``jaxhw.training.feeding``).
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxhw.errors import InputError

BATCH_AXIS = "batch"


def make_mesh(devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``devices`` devices (all of them when None); over several processes, all."""
    available = jax.devices()
    count = len(available) if devices is None else devices
    if not 1 <= count <= len(available):
        raise InputError(f"devices must be between 1 and {len(available)} (the devices JAX sees: "
                         f"{available[0].platform} x {len(available)}), got {count}")
    if jax.process_count() > 1 and count != len(available):
        raise InputError(f"with {jax.process_count()} processes every device takes part: --devices must be "
                         f"{len(available)} (all of them) or left out, got {count}")
    return Mesh(np.array(available[:count]), (BATCH_AXIS,))


def place(tree: Any, sharding: NamedSharding) -> Any:
    """Put a pytree that every process holds whole on the devices of ``sharding``; with several processes each
    places only the parts its own devices hold (``jax.device_put`` cannot reach another process's devices)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)
    return jax.tree_util.tree_map(
        lambda leaf: jax.make_array_from_process_local_data(sharding, leaf, np.shape(leaf)), tree)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a pytree (data set, TrainState) whole on every device of the mesh."""
    return place(tree, NamedSharding(mesh, PartitionSpec()))


def shard_members(tree: Any, mesh: Mesh) -> Any:
    """Place a stack of members (leading axis K, a multiple of the mesh size) split over the mesh's devices:
    each device trains K / devices members."""
    return place(tree, NamedSharding(mesh, PartitionSpec(BATCH_AXIS)))


def process_local(tree: Any) -> Any:
    """A copy of a pytree placed over several processes' devices that this process holds whole on its own device
    (a replicated leaf is read from this process's copy; a split one is gathered from every process)."""

    def local(leaf):
        if not isinstance(leaf, jax.Array) or leaf.is_fully_addressable:
            return leaf
        if leaf.is_fully_replicated:
            return leaf.addressable_data(0)
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(local(jax.random.key_data(leaf)))
        return jax.device_put(multihost_utils.process_allgather(leaf, tiled=True), jax.local_devices()[0])

    return jax.tree_util.tree_map(local, tree)


def shard_batch(batch: dict, mesh: Mesh | None) -> dict:
    """Inside jit: split every array of a batch along its first axis over the mesh (no-op without a mesh)."""
    if mesh is None or mesh.size == 1:
        return batch
    return jax.tree_util.tree_map(
        lambda a: jax.lax.with_sharding_constraint(a, NamedSharding(mesh, PartitionSpec(BATCH_AXIS))), batch)
