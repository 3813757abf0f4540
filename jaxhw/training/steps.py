"""Jitted train and eval steps, and whole epochs as one ``lax.scan`` over on-device batches.

The PyTorch loop ``optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); optimizer.step()``
is ``train_step``: ``jax.value_and_grad`` returns fresh gradients each call (nothing to zero),
``state.apply_gradients`` is the optax update. Train versus eval is the explicit ``train`` argument.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxhw.data.loader import epoch_indices
from jaxhw.data.transforms import scale_images
from jaxhw.errors import InputError
from jaxhw.losses import accuracy_count, cross_entropy
from jaxhw.training.parallel import shard_batch
from jaxhw.training.state import TrainState

Batch = Mapping[str, jax.Array]
# Separate random streams derived from the run's key: one per step for training, one for shuffling
# epochs, one for evaluation, so adding an evaluation never changes the training run.
SHUFFLE_STREAM, EVAL_STREAM = 0x5EED, 0xE7A1
# Evaluation batch: large enough to keep the scan short, small enough that a CNN's activations stay modest
# (peak RSS of a CNN run: 756 MB at 250 against 905 MB at 1000).
EVAL_BATCH_SIZE = 250


def eval_batch_size(num_examples: int, members: int = 1) -> int:
    """Examples per member in one evaluation step: EVAL_BATCH_SIZE shared among the members of a stack, so one
    vmapped step holds about one model's activations (20 Transformer members of problem 5 at 250 each took 3.3x
    as long as at 12: the step's attention weights, 200 MB, left the caches). The metrics are sums over
    examples, so the size changes only their summation order."""
    return max(1, min(EVAL_BATCH_SIZE // max(members, 1), num_examples))


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a model is trained for: how a batch becomes (inputs, targets), the loss, the summed metrics.

    prepare(batch, key, train) -> (inputs, targets); loss(outputs, targets) -> mean loss of the batch;
    metrics(outputs, targets) -> dict of sums over the batch (divided by the data size per epoch).
    """

    loss: Callable[[Any, Any], jax.Array]
    metrics: Callable[[Any, Any], dict]
    prepare: Callable[[Batch, jax.Array, bool], tuple] = lambda batch, key, train: (scale_images(batch["x"]),
                                                                                    batch["y"])


def _classification_metrics(logits, labels):
    return {"loss": cross_entropy(logits, labels, reduction="sum"), "accuracy": accuracy_count(logits, labels)}


classification = Objective(loss=cross_entropy, metrics=_classification_metrics)


def apply_model(state: TrainState, params, inputs, train: bool, key: jax.Array):
    """model.train()/model.eval() made explicit: returns (outputs, batch_stats after this call)."""
    variables = {"params": params, "batch_stats": state.batch_stats} if state.batch_stats else {"params": params}
    if train and state.batch_stats:
        outputs, updates = state.apply_fn(variables, inputs, train=True, rngs={"dropout": key},
                                          mutable=["batch_stats"])
        return outputs, updates["batch_stats"]
    return state.apply_fn(variables, inputs, train=train, rngs={"dropout": key}), state.batch_stats


def train_step(state: TrainState, batch: Batch, objective: Objective = classification):
    """One optimizer step on one batch; returns the new state and the batch's summed metrics."""
    step_key = jax.random.fold_in(state.rng, state.step)
    prepare_key, dropout_key = jax.random.split(step_key)
    inputs, targets = objective.prepare(batch, prepare_key, True)

    def loss_of(params):
        outputs, batch_stats = apply_model(state, params, inputs, True, dropout_key)
        return objective.loss(outputs, targets), (outputs, batch_stats)

    (_, (outputs, batch_stats)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    return state.apply_gradients(grads, batch_stats), objective.metrics(outputs, targets)


def eval_step(state: TrainState, batch: Batch, objective: Objective = classification, train: bool = False):
    """Summed metrics of one batch without updating anything (torch.no_grad() plus model.eval()).

    train=True reproduces the "forgot model.eval()" mistake: dropout on and batch statistics of this
    batch, though the running statistics are still left untouched.
    """
    key = jax.random.fold_in(jax.random.fold_in(state.rng, EVAL_STREAM), state.step)
    prepare_key, dropout_key = jax.random.split(key)
    inputs, targets = objective.prepare(batch, prepare_key, False)
    outputs, _ = apply_model(state, state.params, inputs, train, dropout_key)
    return objective.metrics(outputs, targets)


def _scan_batches(step, carry, batches, rest, mesh=None, gather: Callable | None = None):
    """Run ``step(carry, batch) -> (carry, metrics)`` over ``batches`` (scanned on their leading axis), then the
    last partial batch ``rest`` (or None); ``gather`` turns each scanned item into a batch (default: it is one).

    Returns (carry, metrics summed over batches, the per-batch metrics stacked). With a mesh each batch is
    split over the devices.
    """
    def batch_of(item):
        return shard_batch(item if gather is None else gather(item), mesh)

    carry, per_batch = jax.lax.scan(lambda c, item: step(c, batch_of(item)), carry, batches)
    if rest is not None:
        carry, last = step(carry, batch_of(rest))
        per_batch = jax.tree_util.tree_map(lambda all_, one: jnp.concatenate([all_, one[None]]), per_batch, last)
    return carry, jax.tree_util.tree_map(lambda m: m.sum(axis=0), per_batch), per_batch


def rows_of(data: Batch) -> Callable[[jax.Array], Batch]:
    """The gather of on-device data: an index batch -> the batch of those examples."""
    return lambda index: {name: values[index] for name, values in data.items()}


def shuffle_key(rng: jax.Array, epoch) -> jax.Array:
    """The key of an epoch's data order: the run's key, the shuffle stream, the epoch number."""
    return jax.random.fold_in(jax.random.fold_in(rng, SHUFFLE_STREAM), epoch)


def resolve_members_at_once(requested: int | None, members: int) -> int:
    """How many members of a stack of ``members`` one step trains side by side (vmapped); the program runs such
    groups one after another (``lax.map``). None: the backend's default, all of them on an accelerator, where
    one small member leaves the device idle, and one at a time on the CPU, where its cores are already busy with
    one member and K members side by side only make every array K times larger: out of the caches, the homework
    CNN's five members at batch 64 took 1.37x as long per member as one after another (benchmarks/NOTES.md)."""
    if requested is None:
        requested = members if jax.default_backend() != "cpu" else 1
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise InputError(f"members_at_once must be a positive integer or None, got {requested!r}")
    return min(requested, members)


def over_members(fn: Callable, members: bool, data_per_member: bool, extra_args: int = 0,
                 at_once: int | None = None) -> Callable:
    """``fn(state, data, *extra)`` for one model, or mapped over a stack of member states (leading axis K) and
    either one shared data set or one per member (also stacked on a leading axis K).

    ``at_once`` None: all K members vmapped together; a number below K: ``lax.map`` over the members, that many
    vmapped side by side at a time (1: one after another, each exactly as if alone)."""
    if not members:
        return fn

    def mapped(state, data, *extra):
        count = jax.tree_util.tree_leaves(state)[0].shape[0]
        if at_once is None or at_once >= count:
            in_axes = (0, 0 if data_per_member else None, *([None] * extra_args))
            return jax.vmap(fn, in_axes=in_axes)(state, data, *extra)
        group = None if at_once == 1 else at_once
        if data_per_member:
            return jax.lax.map(lambda pair: fn(*pair, *extra), (state, data), batch_size=group)
        return jax.lax.map(lambda one: fn(one, data, *extra), state, batch_size=group)

    return mapped


def make_epoch_fn(objective: Objective = classification, batch_size: int = 64, shuffle: bool = True,
                  drop_last: bool = False, mesh=None, members: bool = False, data_per_member: bool = False,
                  fed: bool = False, at_once: int | None = None) -> Callable[[TrainState, Batch, int], tuple]:
    """A jitted ``epoch(state, data, epoch) -> (state, summed metrics, per-batch metrics)``: one ``lax.scan``.

    data is a dict of device arrays (images stay uint8); the batch order is a permutation drawn on the
    device from (state.rng, epoch), and the last partial batch is kept unless drop_last. With a
    ``jax.sharding.Mesh`` every batch is split over its devices (data parallelism). The state is donated.
    With ``members`` the state is a stack of K members (``create_train_states``) trained as one program, each
    with its own key, data order, dropout masks and batch statistics; the metrics gain a leading axis K;
    ``at_once`` of them train side by side at a time (``over_members``; None: all). With ``fed`` the data is not
    indexed on the device: each call takes the epoch's batches already gathered in its order
    (``jaxhw.training.feeding.FedBatches``, one per member), as a mesh that spans several processes needs.
    """
    step = functools.partial(train_step, objective=objective)

    def epoch(state: TrainState, data, epoch):
        if fed:  # the epoch's batches, gathered by each process in this order (jaxhw.training.feeding)
            return _scan_batches(step, state, *data.unpadded(), mesh)
        batches, rest = epoch_indices(shuffle_key(state.rng, epoch), len(next(iter(data.values()))), batch_size,
                                      shuffle, drop_last)
        return _scan_batches(step, state, batches, rest, mesh, rows_of(data))

    return jax.jit(over_members(epoch, members, data_per_member or fed, 1, at_once), donate_argnums=0)


def make_eval_fn(objective: Objective = classification, batch_size: int | None = None, train: bool = False,
                 mesh=None, members: bool = False, data_per_member: bool = False,
                 fed: bool = False, at_once: int | None = None) -> Callable[[TrainState, Batch], dict]:
    """A jitted ``evaluate(state, data) -> summed metrics`` over the whole data set, in order, in batches
    (for a stack of members and ``fed`` batches, as ``make_epoch_fn``).

    ``batch_size`` None: ``eval_batch_size``, each member's share of EVAL_BATCH_SIZE among those evaluated side
    by side (``at_once`` of them; None: all). Give it where the batch decides the result: in train mode
    BatchNorm normalises with each batch's own statistics.
    """

    def evaluate(state: TrainState, data, size: int):
        def step(carry, batch):
            return carry, eval_step(state, batch, objective, train)

        if fed:
            return _scan_batches(step, None, *data.unpadded(), mesh)[1]
        batches, rest = epoch_indices(None, len(next(iter(data.values()))), size, shuffle=False)
        return _scan_batches(step, None, batches, rest, mesh, rows_of(data))[1]

    def evaluate_all(state: TrainState, data):
        size = None
        if not fed:  # fed batches come made (HostFeed.evaluation); shapes are static, so the sizes are known here
            num_examples = np.shape(next(iter(data.values())))[1 if members and data_per_member else 0]
            side_by_side = min(at_once or state.step.shape[0], state.step.shape[0]) if members else 1
            size = (eval_batch_size(num_examples, side_by_side) if batch_size is None
                    else min(batch_size, num_examples))
        return over_members(functools.partial(evaluate, size=size), members, data_per_member,
                            at_once=at_once)(state, data)

    return jax.jit(evaluate_all)
