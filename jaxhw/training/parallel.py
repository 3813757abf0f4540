"""Data parallelism through jax.sharding: a Mesh over devices, the batch axis (or the members of an ensemble)
sharded, everything else replicated.

No hand-written all-reduce: inside the jitted step each batch is constrained to be split along its first
axis over the mesh, parameters and optimizer state are replicated, and XLA's SPMD partitioner inserts the
gradient reduction. Means over the batch (the loss, BatchNorm's batch statistics) are therefore means over
the *global* batch, as with torch.nn.SyncBatchNorm. Multi-host: call ``jax.distributed.initialize()`` in every
process before anything else; ``jax.devices()`` then lists every host's devices and the same code runs.
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxhw.errors import InputError

BATCH_AXIS = "batch"


def make_mesh(devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first ``devices`` devices (all of them when None)."""
    available = jax.devices()
    count = len(available) if devices is None else devices
    if not 1 <= count <= len(available):
        raise InputError(f"devices must be between 1 and {len(available)} (the devices JAX sees: "
                         f"{available[0].platform} x {len(available)}), got {count}")
    return Mesh(np.array(available[:count]), (BATCH_AXIS,))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a pytree (data set, TrainState) whole on every device of the mesh."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_members(tree: Any, mesh: Mesh) -> Any:
    """Place a stack of members (leading axis K, a multiple of the mesh size) split over the mesh's devices:
    each device trains K / devices members."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(BATCH_AXIS)))


def shard_batch(batch: dict, mesh: Mesh | None) -> dict:
    """Inside jit: split every array of a batch along its first axis over the mesh (no-op without a mesh)."""
    if mesh is None or mesh.size == 1:
        return batch
    return jax.tree_util.tree_map(
        lambda a: jax.lax.with_sharding_constraint(a, NamedSharding(mesh, PartitionSpec(BATCH_AXIS))), batch)
